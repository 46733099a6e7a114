"""The top of the page: title, the stand-in banner, and the status line (what is served, from
where, in which precision, on which device)."""

import gradio as gr

from pipelines import catalogue, hub_probe, ir_precision
from pipelines.catalogue import ModelSpec
from pipelines.device import openvino_devices
from pipelines.engine import LocalEngine
from pipelines.registry import Registry


def header(engine: LocalEngine, model_ids: list[str],
           offline_reason: str | None = None) -> gr.Markdown:
    """The title, the banner where a stand-in is served (with why the real models are not
    offered for download, where the start asked the Hub: offline_reason), and the status line
    (returned)."""
    registry = engine.registry
    gr.Markdown("# turbo-studio\nText-to-image, image-to-image, inpainting and live camera or "
                "sketch, in 1–4 steps with SDXL-Turbo on OpenVINO, on your CPU.")
    spec = catalogue.get(model_ids[0])
    if spec.stand_in:
        stand_in_banner(spec, "this app", elem_id="stand-in-banner")
        if offline_reason:
            gr.Markdown(f"The real models were not offered for download: {offline_reason}.",
                        elem_id="offline-reason")
    for problem in registry.catalogue.problems:  # a broken user catalogue: say where, serve on
        gr.Markdown(f"⚠ {problem}", elem_classes="catalogue-problem")
    # ui.demo refreshes it on every page load: the precision read back from the compiled model,
    # and variants exported since the start, show.
    return gr.Markdown(status_line(engine, model_ids), elem_id="status")


def stand_in_banner(spec: ModelSpec, where: str, elem_id: str) -> gr.Markdown:
    real = catalogue.get(spec.stands_in_for)
    return gr.Markdown(
        f"⚠ **{real.name} is not exported here, so {where} serves the {spec.name}**: random "
        f"weights, its images are noise. To serve {real.name}, run "
        f"`{catalogue.export_command(real.id)}` where the Hugging Face Hub is reachable, then "
        f"restart the app.", elem_id=elem_id)


def status_line(engine: LocalEngine, model_ids: list[str]) -> str:
    registry = engine.registry
    return ("Serving " + "; ".join(model_status(registry, m) for m in model_ids) +
            f"; on **{registry.device}** (OpenVINO sees: {', '.join(openvino_devices())}); each "
            f"variant loads and compiles on first use. Generations run {engine.where()}.")


def _labelled(registry: Registry, model_id: str, variant: str) -> str:
    """A variant with what its UNet's graph says it is (ir_precision)."""
    if (size := registry.download_size(model_id, variant)) is not None:
        return f"{variant}: downloads {hub_probe.gigabytes(size)} on first use"
    read = registry.label(model_id, variant)
    return f"{variant}: {ir_precision.describe(read)}" if read else variant


def model_status(registry: Registry, model_id: str) -> str:
    spec = registry.catalogue.get(model_id)
    variants = ", ".join(_labelled(registry, model_id, v) for v in
                         registry.offered_variants(model_id)) or "not exported yet"
    compiled = registry.precisions(model_id)
    if compiled:
        precision = ", ".join(f"**{p}** ({v}, as compiled)" for v, p in compiled.items())
    else:
        precision = (f"**{registry.precision_hint or 'device default'}** (asked: "
                     f"{registry.precision}; read back from the model once it is loaded)")
    where = served_from(registry, model_id)
    return (f"**{spec.name}** ({variants}){f' from {where}' if where else ''}, precision "
            f"{precision}")


def served_from(registry: Registry, model_id: str) -> str:
    """Where the model's variants load from: the models folder, or the Hugging Face cache
    (pre-exported repos), as Markdown."""
    places = []
    for variant in registry.offered_variants(model_id):
        repo = registry.catalogue.get(model_id).hub_exports.get(variant)
        place = (f"`{registry.models_dir / model_id}`" if registry.is_exported(model_id, variant)
                 else f"the Hugging Face cache (`{repo}`)")
        if place not in places:
            places.append(place)
    return " and ".join(places)
