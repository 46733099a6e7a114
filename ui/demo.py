"""The app: header, the tabs, the queue. `create_demo(settings)` is what app.py launches;
`build_demo(registry)` is the same app on a registry of your own (tests), generating in this
process unless given another engine (cluster.engine.RayEngine: on Ray Serve replicas)."""

import gradio as gr

from pipelines import catalogue, hub_probe
from pipelines.engine import LocalEngine
from pipelines.registry import Registry
from pipelines.requests import MAX_UPLOAD_BYTES
from pipelines.settings import Settings, hub_offline, on_space
from ui import examples, first_start, preload
from ui.app_settings import AppSettings
from ui.compare import compare_tab, missing_note
from ui.generation import refresh_exported
from ui.header import header, status_line
from ui.image_to_image import image_to_image_tab
from ui.inpaint import inpaint_tab
from ui.live import live_tab, refresh as refresh_live
from ui.text_to_image import text_to_image_tab
from ui.vega import vega_tab
from ui.widgets import variant_state

# For every launch, tests included: uploads are capped, and gradio serves no file of ours but
# assets/ (never models/, .env or the compile cache). show_error: a request gradio refuses
# before any handler runs (a file it did not store, too few inputs) says why, not "Error"; the
# handlers' own errors are messages written for users already.
LAUNCH_OPTIONS = dict(max_file_size=MAX_UPLOAD_BYTES, allowed_paths=[str(examples.ASSETS)],
                      show_error=True)
# The models the Text-to-Image, Image-to-Image and Inpaint tabs offer (those exported here), and
# the one the Segmind-VegaRT tab serves.
MAIN_MODELS = ("sdxl-turbo", "sdxl-base")
VEGA_MODELS = ("segmind-vegart",)


def create_demo(settings: AppSettings) -> gr.Blocks:
    """The app as the settings say; on a start that lacks stand-ins, they are built in the
    background while the page is up, and with --preload the opening model is loaded then
    too (ui.preload)."""
    registry = Registry.from_settings(settings)
    offline_reason = offer_real_models(registry)
    build = first_start_build(settings, registry)
    engine = make_engine(settings, registry)
    demo = build_demo(registry, settings.queue_size, build, engine, offline_reason)
    if build is not None:
        build.start()
    if settings.preload:
        preload.start(engine, lambda: opening_model(registry), build)
    return demo


def offer_real_models(registry: Registry) -> str | None:
    """An online first start with no real model here: ask the Hub for the catalogue's public
    pre-exported repos and offer those it answers for (downloaded on first use), so the page
    opens on SDXL-Turbo rather than a stand-in. Returns why none is offered, where it asked;
    offline (HF_HUB_OFFLINE) it asks nothing and the stand-ins serve as before."""
    if hub_offline() or any(registry.offered_variants(m) for m in MAIN_MODELS):
        return None
    found = hub_probe.probe(catalogue.hub_repos())
    registry.offer_downloads(found.sizes)
    return found.problem


def opening_model(registry: Registry) -> tuple[str, str]:
    """The model and variant the Text-to-Image tab opens on."""
    model_id = registry.served(MAIN_MODELS)[0]
    return model_id, variant_state(registry, model_id)["value"]


def first_start_build(settings: Settings,
                      registry: Registry | None = None) -> first_start.StandInBuild | None:
    """The build (not started) of the stand-ins the app serves and models_dir lacks; None
    when nothing is missing. A Space that serves real models builds none: it leaves out the
    tabs whose models it lacks (shown_groups)."""
    registry = registry or Registry.from_settings(settings)
    stand_ins = [m for candidates in shown_groups(registry)
                 for m in registry.served(candidates, building=True)
                 if catalogue.get(m).stand_in]
    return first_start.stand_in_build(registry.models_dir, stand_ins, settings.verbose)


def shown_groups(registry: Registry) -> list[tuple[str, ...]]:
    """The model groups whose tabs the page shows: the main tabs always; the Segmind-VegaRT
    tab too, except on a Space that serves real models but not Segmind-VegaRT (its visitors
    could neither use a stand-in's noise nor export the model)."""
    def real(group: tuple[str, ...]) -> bool:
        return any(registry.offered_variants(m) for m in group)

    if real(VEGA_MODELS) or not (on_space() and real(MAIN_MODELS)):
        return [MAIN_MODELS, VEGA_MODELS]
    return [MAIN_MODELS]


def make_engine(settings: AppSettings, registry: Registry) -> LocalEngine:
    """This process, or Ray Serve's model workers where --ray says (Ray is imported only then;
    an unreachable cluster stops the start with a message, cluster.start.ClusterUnavailable)."""
    if settings.ray is None:
        return LocalEngine(registry)
    from cluster.start import connect

    return connect(settings, registry, settings.ray, settings.replicas)


def build_demo(registry: Registry, queue_size: int = AppSettings.queue_size,
               build: first_start.StandInBuild | None = None,
               engine: LocalEngine | None = None,
               offline_reason: str | None = None) -> gr.Blocks:
    """queue_size bounds the waiting requests: past it users are told the app is busy instead
    of piling up work. engine: where generations run (default: in this process, on registry's
    models); the registry says what is exported, whichever engine runs them."""
    engine = engine or LocalEngine(registry)
    # The user's own models (python -m export add) join the main tabs whatever their base:
    # those tabs take every model's settings from the catalogue; the VegaRT tab is one model's.
    model_ids = registry.served(MAIN_MODELS, build is not None) + [
        m for m in registry.catalogue.user_ids if registry.offered_variants(m)]
    vega = (VEGA_MODELS in shown_groups(registry)
            and registry.served(VEGA_MODELS, build is not None)[0])
    compared = next((m for m in model_ids if "int8" in registry.catalogue.get(m).variants),
                    model_ids[0])
    # A Space offers the comparison only where it has both variants: its visitors cannot
    # export the missing one.
    comparable = not on_space() or not missing_note(registry, compared)
    with gr.Blocks(title="turbo-studio") as demo:
        status = header(engine, model_ids, offline_reason)
        built = first_start.progress(build) if build is not None else None
        with gr.Tab("Text-to-Image"):
            tabs = [text_to_image_tab(engine, model_ids)]
        with gr.Tab("Image-to-Image"):
            tabs.append(image_to_image_tab(engine, model_ids))
        with gr.Tab("Inpaint"):
            tabs.append(inpaint_tab(engine, model_ids))
        with gr.Tab("Live"):
            live = live_tab(engine, model_ids)
        if vega:
            with gr.Tab("Segmind-VegaRT"):
                tabs += vega_tab(engine, vega)
        compare_note = None
        if comparable:
            with gr.Tab("FP16 vs INT8"):
                compare_note = compare_tab(engine, compared)
        triggers = [demo.load] + ([built.change] if built is not None else [])
        _offer_what_is_exported(engine, triggers, tabs, status, model_ids, compare_note,
                                compared, live)
    # api_open=False: the REST routes cannot skip the queue (and its bound and per-model limit).
    return demo.queue(max_size=queue_size, api_open=False)


def _offer_what_is_exported(engine: LocalEngine, triggers: list, tabs: list[dict],
                            status: gr.Markdown, model_ids: list[str],
                            compare_note: gr.Markdown | None, compared: str,
                            live: dict) -> None:
    """On every page load, and each time a build step finishes: the variants and fast decoder
    exported since the app started appear in every tab (no restart), and the status line and
    the comparison tab's note say what is served now."""
    registry = engine.registry
    for controls in tabs:
        gr.on(triggers, lambda model_id, variant: refresh_exported(registry, model_id, variant),
              inputs=[controls["model_id"], controls["variant"]],
              outputs=[controls["variant"], controls["fast_decoder"]], queue=False,
              api_visibility="private")
    if live:  # the Live tab: its variants, and whether its Tiny Autoencoder is there now
        gr.on(triggers, lambda model_id, variant: refresh_live(registry, model_id, variant),
              inputs=[live["model_id"], live["variant"]],
              outputs=[live["variant"], live["notice"]], queue=False, api_visibility="private")
    if compare_note is None:
        gr.on(triggers, lambda: status_line(engine, model_ids), outputs=[status], queue=False,
              api_visibility="private")
    else:
        gr.on(triggers, lambda: (status_line(engine, model_ids),
                                 missing_note(registry, compared)),
              outputs=[status, compare_note], queue=False, api_visibility="private")
