"""turbo-studio: the Gradio UI. Builds the Blocks (one function per tab) and wires events to
pipelines/; every model fact comes from pipelines.catalogue.

    python app.py [--host H] [--port N] [--share --auth USER:PASS] [--device CPU|GPU|NPU|AUTO]
                  [--models-dir DIR] [--queue-size N] [--ram-budget-gb GB]

Every flag has a TURBO_* environment variable (see README, Configuration).
"""

import argparse
import html
import os
import threading
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from pipelines import catalogue, compare, generate, pngmeta, stream
from pipelines.compiled import PRECISIONS, check_device, default_precision, openvino_devices
from pipelines.realtime import NewestOnly
from pipelines.registry import ModelNotAvailable, Registry, default_models_dir
from pipelines.requests import (MAX_SEED, MAX_UPLOAD_BYTES, Image2Image, InvalidRequest, Result,
                                Text2Image, load_image, validate)

ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLE_PROMPTS = [
    "a cinematic photo of a red fox in a snowy forest at sunrise, detailed fur",
    "an astronaut reading a book in a flower garden, watercolor",
    "a futuristic city street at night with neon lights in the rain",
    "a cute robot holding a cup of tea, 3d render, soft lighting",
]
IMAGE_EXAMPLE = ASSETS / "examples" / "dusk-hills.png"
# For every launch, tests included: uploads are capped, and gradio serves no file of ours but
# assets/ (never models/, .env or the compile cache).
LAUNCH_OPTIONS = dict(max_file_size=MAX_UPLOAD_BYTES, allowed_paths=[str(ASSETS)])
# The models the Text-to-Image and Image-to-Image tabs offer (those exported here), and the one
# the Segmind-VegaRT tab serves.
MAIN_MODELS = ("sdxl-turbo", "sdxl-base")
VEGA_MODEL = "segmind-vegart"
# Every event that generates shares this one concurrency group, one run at a time: on this
# 2-core CPU two runs at once (even of two models) only split the cores, so both finish later
# than one after the other would; queued users wait their turn instead. (Real-time runs have
# their own group, to supersede stale requests at once; the registry's run lock still makes
# them take turns.)
GENERATION = "generation"


def space_defaults(environ=os.environ) -> None:
    """On a Hugging Face Space (SPACE_ID is set), gradio caches every example that has a
    function, eagerly by default: that would run the model before the app starts. Cache them
    lazily, on first use, unless the Space's settings say otherwise."""
    if environ.get("SPACE_ID"):
        environ.setdefault("GRADIO_CACHE_MODE", "lazy")


space_defaults()


class UploadImage(gr.Image):
    """gr.Image that hands the uploaded file's path over unopened.

    Written by hand: gr.Image opens every upload with PIL before the event runs, so a non-image
    or a decompression bomb fails there with a bare "Error". requests.load_image reads the size
    from the header first and explains every refusal. is_template keeps gr.Image's front end."""

    is_template = True

    def preprocess(self, payload):
        if payload is None or payload.path is None:
            return super().preprocess(payload)  # none, or a data: URL gradio decodes itself
        return payload.path


def served_models(registry: Registry, candidates=MAIN_MODELS) -> list[str]:
    """The candidates exported here; when none is, their stand-ins that are exported, the first
    one exported now if missing (~20 s, offline)."""
    real = [model_id for model_id in candidates if exported_variants(registry, model_id)]
    if real:
        return real
    stand_ins = [catalogue.stand_in_for(model_id) for model_id in candidates]
    if not registry.is_exported(stand_ins[0], "fp16"):
        from export import export_model  # torch-heavy; only needed this once
        export_model(stand_ins[0], "fp16", registry.models_dir)
    return [model_id for model_id in stand_ins if exported_variants(registry, model_id)]


def serving_model(registry: Registry) -> str:
    """The model the main tabs start on: the first real exported one, else the tiny stand-in."""
    return served_models(registry)[0]


def exported_variants(registry: Registry, model_id: str) -> list[str]:
    return [variant for variant in catalogue.get(model_id).variants
            if registry.available(model_id, variant)]


class ModelSlider(gr.Slider):
    """gr.Slider whose range follows the model chosen, so gradio's own bounds check (made
    against the range the page started with, for API users) would refuse another model's
    values: requests.validate checks them against the model's own range instead, with a clear
    message. Written by hand: gradio has no option to skip its check."""

    is_template = True

    def preprocess(self, payload):
        return payload


class ModelRadio(gr.Radio):
    """gr.Radio whose choices follow the model chosen (its variants); requests.validate checks
    the value against the catalogue instead of gradio against the first model's choices."""

    is_template = True

    def preprocess(self, payload):
        return payload


def variant_choice(registry: Registry, model_id: str) -> gr.Radio:
    """FP16 / INT8 / INT8 weights, listing only the variants exported here."""
    variants = exported_variants(registry, model_id)
    return ModelRadio(variants, value=variants[0], label="Variant", info=variant_info(variants))


def variant_info(variants: list[str]) -> str:
    return " · ".join(f"{v}: {catalogue.VARIANTS[v]}" for v in variants if v != "fp16")


def decoder_choice(registry: Registry, model_id: str) -> gr.Checkbox:
    """The fast decoder (TAESD) toggle: on by default where the catalogue says so and it is
    exported; where it is not, disabled, with the command that exports it."""
    spec = catalogue.get(model_id)
    if spec.fast_decoder is None:
        return gr.Checkbox(value=False, visible=False)
    autoencoder = catalogue.AUTOENCODERS[spec.fast_decoder]
    exported = registry.has_autoencoder(autoencoder.id)
    info = (autoencoder.description if exported else
            f"Not exported: run `{catalogue.export_command(autoencoder.id)}`, then restart.")
    return gr.Checkbox(label=f"Fast decoder ({autoencoder.name})", info=info,
                       value=exported and spec.fast_decoder_default, interactive=exported)


def describe(result: Result) -> str:
    """Markdown shown under the image: seed, time per stage (and which decoder), warnings."""
    stages = " · ".join(f"{stage} ({result.decoder}) {seconds:.2f} s" if stage == "decoder"
                        else f"{stage} {seconds:.2f} s"
                        for stage, seconds in result.timings.items() if stage != "total")
    lines = [f"**{result.timings['total']:.2f} s** in all ({stages}) · seed {result.seed}"]
    lines += [f"- ⚠ {warning}" for warning in result.warnings]
    return "\n".join(lines)


def user_error(e: Exception) -> gr.Error:
    """gr.Error renders HTML, and messages quote what the user typed: escape it."""
    return gr.Error(html.escape(str(e)), print_exception=False)


def run_request(registry: Registry, request: Text2Image, progress: gr.Progress) -> Result:
    """Validate, load on first use, generate; user-fixable problems become gr.Error."""
    try:
        request = validate(request)
        progress(0, desc="Loading the model (first use downloads or compiles it)…")
        loaded = registry.get(request.model_id, request.variant,
                              download_progress=download_bar(progress))
        result = generate.run(loaded, request,
                              on_step=lambda done, total: progress((done, total), desc="Denoising"))
    except (InvalidRequest, ModelNotAvailable) as e:
        raise user_error(e) from None
    for warning in result.warnings:
        gr.Warning(html.escape(warning))
    pngmeta.tag(result, request)  # the PNG users download carries the settings
    return result


def download_bar(progress: gr.Progress):
    """A tqdm class that also reports to the user's progress bar: the registry hands it to
    huggingface_hub when it downloads a pre-exported model (it counts the files)."""
    from tqdm.auto import tqdm

    class DownloadBar(tqdm):
        def update(self, n=1):
            done = super().update(n)
            if self.total:
                progress((self.n, self.total), desc="Downloading the model", unit="files")
            return done

    return DownloadBar


class Runs:
    """The running generation's stop flag per browser session, so that a Stop button stops its
    own user's run only. One per app (build_demo), never shared between apps."""

    def __init__(self):
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        flag = threading.Event()
        with self._lock:
            self._flags[session] = flag
        return flag

    def finish(self, session: str, flag: threading.Event) -> None:
        with self._lock:
            if self._flags.get(session) is flag:
                del self._flags[session]

    def stop(self, session: str) -> None:
        with self._lock:
            flag = self._flags.get(session)
        if flag is not None:
            flag.set()


def stream_request(registry: Registry, request: Text2Image, runs: Runs, session: str,
                   progress: gr.Progress):
    """Like run_request, but yields (image, seed, info) for each preview (multi-step runs where
    the fast decoder is exported), then for the result; the session's Stop button ends it."""
    flag = runs.start(session)  # from here on, Stop counts: while loading too
    try:
        request = validate(request)
        progress(0, desc="Loading the model (first use downloads or compiles it)…")
        loaded = registry.get(request.model_id, request.variant,
                              download_progress=download_bar(progress))
        if flag.is_set():
            yield gr.skip(), gr.skip(), "⏹ Stopped before the first step."
            return
        for item in stream.stream(loaded, request, stop=flag,
                                  on_step=lambda done, total: progress((done, total),
                                                                       desc="Denoising")):
            if isinstance(item, stream.Preview):
                yield item.image, gr.skip(), f"Step {item.step} of {item.steps}…"
            else:
                for warning in item.warnings:
                    gr.Warning(html.escape(warning))
                pngmeta.tag(item, request)  # the PNG users download carries the settings
                yield item.image, item.seed, describe(item)
    except (InvalidRequest, ModelNotAvailable) as e:
        raise user_error(e) from None
    except generate.Stopped as e:
        yield gr.skip(), gr.skip(), f"⏹ {e}"
    finally:
        runs.finish(session, flag)


def stop_button(runs: Runs, api_name: str) -> gr.Button:
    """A Stop button for its user's running generation (outside the generation group, so it is
    never queued behind the run it stops)."""
    button = gr.Button("Stop", variant="stop")

    def stop(http: gr.Request) -> None:
        runs.stop(http.session_hash)

    # queue=False: a full queue must not refuse a Stop.
    button.click(stop, api_name=api_name, queue=False)
    return button


def model_choice(model_ids: list[str]) -> gr.Radio:
    return gr.Radio([(catalogue.get(m).name, m) for m in model_ids], value=model_ids[0],
                    label="Model", visible=len(model_ids) > 1,
                    info=" · ".join(f"{catalogue.get(m).name}: {catalogue.get(m).description}"
                                    for m in model_ids))


def range_slider(label: str, allowed, **options) -> ModelSlider:
    return ModelSlider(label=label, **slider_range(allowed), **options)


def range_update(allowed) -> dict:
    return gr.update(**slider_range(allowed))


def slider_range(allowed) -> dict:
    # A fixed setting (SDXL-Turbo's guidance 0) has min = max, which gr.Slider refuses; its
    # slider is hidden, and the value sent stays the default.
    return dict(minimum=allowed.min, maximum=max(allowed.max, allowed.min + allowed.step),
                value=allowed.default, step=allowed.step)


def guidance_slider(spec) -> ModelSlider:
    """Shown for models that use classifier-free guidance (SDXL-Turbo runs without)."""
    return range_slider("Guidance", spec.guidance, visible=spec.guidance.max > 0,
                        info="How closely to follow the prompt; above 1 the negative prompt "
                             "applies too")


def negative_prompt_box(spec) -> gr.Textbox:
    return gr.Textbox(label="Negative prompt", lines=1, placeholder="What the image should not show",
                      visible=negative_prompt_applies(spec, spec.guidance.default))


def negative_prompt_applies(spec, guidance) -> bool:
    return spec.uses_guidance and guidance is not None and guidance > 1


def show_negative_prompt(model_id: str, guidance) -> dict:
    return gr.update(visible=negative_prompt_applies(catalogue.get(model_id), guidance))


def model_settings(registry: Registry, model_id: str, task: str) -> list:
    """Updates for the controls that follow the model, from the catalogue, in the order
    model_controls_outputs lists them: steps, guidance, negative prompt, size or strength,
    variant, fast decoder."""
    spec = catalogue.get(model_id)
    variants = exported_variants(registry, model_id)
    decoder = decoder_choice(registry, model_id)
    steps = spec.steps if task == "text2image" else spec.img2img_steps
    updates = [range_update(steps),
               gr.update(**range_update(spec.guidance), visible=spec.guidance.max > 0),
               gr.update(visible=negative_prompt_applies(spec, spec.guidance.default))]
    if task == "text2image":
        updates += [range_update(spec.size), range_update(spec.size)]
    else:
        updates += [range_update(spec.strength),
                    gr.update(label=f"Image (center-cropped to {int(spec.size.default)}²)")]
    updates += [gr.update(choices=variants, value=variants[0], info=variant_info(variants)),
                gr.update(value=decoder.value, interactive=decoder.interactive,
                          label=decoder.label, info=decoder.info, visible=decoder.visible)]
    return updates


def seed_controls() -> tuple[gr.Number, gr.Checkbox]:
    with gr.Row():
        seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED)
        randomize = gr.Checkbox(label="Random seed", value=True)
    return seed, randomize


def result_outputs() -> tuple[gr.Image, gr.Number, gr.Markdown]:
    # PNG keeps the settings pngmeta.tag put in the image's info (gradio copies text info).
    image = gr.Image(label="Result", type="pil", format="png", height=512)
    seed_used = gr.Number(label="Seed used", precision=0, interactive=False)
    info = gr.Markdown()
    session_gallery(image)
    return image, seed_used, info


GALLERY_SIZE = 24  # newest first; older images drop off


def session_gallery(image: gr.Image) -> gr.Gallery:
    """This session's images: the gallery's value lives in the user's browser session, so
    nothing is shared between users."""
    gallery = gr.Gallery(label="This session's images", format="png", columns=6, height=200,
                         preview=False, elem_classes=["session-gallery"])
    image.change(add_to_gallery, inputs=[image, gallery], outputs=gallery,
                 api_visibility="private", queue=False)
    return gallery


def add_to_gallery(image, gallery):
    if image is None or "seed" not in image.info:  # previews carry no settings: results only
        return gr.skip()
    caption = f"seed {image.info['seed']}"
    if gallery and gallery[0][1] == caption and same_pixels(gallery[0][0], image):
        return gr.skip()  # the image's change event can fire twice for one result
    return [(image, caption), *(gallery or [])][:GALLERY_SIZE]


def same_pixels(path: str, image: Image.Image) -> bool:
    try:
        with Image.open(path) as other:
            return other.size == image.size and np.array_equal(
                np.asarray(other.convert("RGB")), np.asarray(image.convert("RGB")))
    except OSError:  # the gallery's file is gone: not the same result then
        return False


def text_to_image_tab(registry: Registry, model_ids: list[str], runs: Runs) -> None:
    spec = catalogue.get(model_ids[0])
    with gr.Row():
        with gr.Column():
            model = model_choice(model_ids)
            prompt = gr.Textbox(label="Prompt", lines=2, autofocus=True,
                                placeholder="Describe the image; Enter generates")
            negative = negative_prompt_box(spec)
            steps = range_slider("Steps", spec.steps)
            guidance = guidance_slider(spec)
            with gr.Row():
                width, height = (range_slider(name, spec.size) for name in ("Width", "Height"))
            seed, randomize = seed_controls()
            variant = variant_choice(registry, model_ids[0])
            fast_decoder = decoder_choice(registry, model_ids[0])
            realtime = gr.Checkbox(label="Real-time", value=False,
                                   info="Generate as you type, with the seed above kept fixed; "
                                        "the newest prompt replaces one still waiting")
            with gr.Row():
                button = gr.Button("Generate", variant="primary")
                stop_button(runs, "stop")
            gr.Examples(EXAMPLE_PROMPTS, inputs=[prompt])
        with gr.Column():
            image, seed_used, info = result_outputs()

    # queue=False on the events that only update controls: a full queue must not refuse them.
    model.change(lambda m: model_settings(registry, m, "text2image"), inputs=model,
                 outputs=[steps, guidance, negative, width, height, variant, fast_decoder],
                 queue=False)
    guidance.change(show_negative_prompt, inputs=[model, guidance], outputs=negative,
                    queue=False)

    def text_to_image(prompt, seed, randomize, steps, width, height, variant, fast_decoder=None,
                      model_id=model_ids[0], guidance=None, negative_prompt=None,
                      http: gr.Request = None, progress=gr.Progress()):
        request = Text2Image(prompt=prompt, model_id=model_id, variant=variant,
                             seed=None if randomize else seed, steps=steps, width=width,
                             height=height, fast_decoder=fast_decoder, guidance=guidance,
                             negative_prompt=negative_prompt)
        yield from stream_request(registry, request, runs, http.session_hash, progress)

    # New inputs go at the end, so API calls made before they existed still work.
    gr.on([button.click, prompt.submit], text_to_image,
          inputs=[prompt, seed, randomize, steps, width, height, variant, fast_decoder, model,
                  guidance, negative],
          outputs=[image, seed_used, info], api_name="text_to_image",
          concurrency_id=GENERATION, concurrency_limit=1)
    realtime_events(registry, model, realtime, prompt, seed, steps, width, height, variant,
                    fast_decoder, guidance, negative, outputs=[image, seed_used, info])


def realtime_events(registry: Registry, model: gr.Radio, enabled: gr.Checkbox, prompt: gr.Textbox,
                    seed, steps, width, height, variant, fast_decoder, guidance, negative,
                    outputs: list) -> None:
    """Real-time mode: typing (or moving a slider) generates. In the browser, always_last keeps
    at most one event pending, with the latest text; gradio has no debounce option, and a timer
    would add its delay to every image, so the time of a run is the debounce. On the server,
    NewestOnly holds each session to one run and one waiting, for API clients too. Its own
    unlimited concurrency group lets a request arrive (and supersede the waiting one) at once;
    its runs still take turns with every other generation on the registry's run lock."""
    newest = NewestOnly()

    def generate_now(enabled, prompt, seed, steps, width, height, variant, fast_decoder, model_id,
                     guidance=None, negative_prompt=None, request: gr.Request = None,
                     progress=gr.Progress()):
        if not enabled or not prompt.strip():
            return gr.skip()
        text_request = Text2Image(prompt=prompt, model_id=model_id, variant=variant, seed=seed,
                                  steps=steps, width=width, height=height,
                                  fast_decoder=fast_decoder, guidance=guidance,
                                  negative_prompt=negative_prompt)
        result = newest.run(request.session_hash,
                            lambda: run_request(registry, text_request, progress))
        return gr.skip() if result is None else (result.image, result.seed, describe(result))

    gr.on([prompt.input, steps.release, width.release, height.release, guidance.release],
          generate_now,
          inputs=[enabled, prompt, seed, steps, width, height, variant, fast_decoder, model,
                  guidance, negative],
          outputs=outputs, api_name="realtime", trigger_mode="always_last",
          concurrency_id="realtime", concurrency_limit=None, show_progress="minimal")


def image_to_image_tab(registry: Registry, model_ids: list[str], runs: Runs) -> None:
    spec = catalogue.get(model_ids[0])
    with gr.Row():
        with gr.Column():
            model = model_choice(model_ids)
            source = UploadImage(label=f"Image (center-cropped to {int(spec.size.default)}²)",
                                 type="filepath", sources=["upload", "clipboard"], height=320)
            prompt = gr.Textbox(label="Prompt", lines=2, placeholder="What should it become?")
            negative = negative_prompt_box(spec)
            strength = range_slider("Strength (how much to change)", spec.strength)
            steps = range_slider("Steps", spec.img2img_steps)
            guidance = guidance_slider(spec)
            seed, randomize = seed_controls()
            variant = variant_choice(registry, model_ids[0])
            fast_decoder = decoder_choice(registry, model_ids[0])
            with gr.Row():
                button = gr.Button("Generate", variant="primary")
                stop_button(runs, "stop_image_to_image")
            gr.Examples([[str(IMAGE_EXAMPLE), "a castle on the hills at dusk, oil painting"]],
                        inputs=[source, prompt])
        with gr.Column():
            image, seed_used, info = result_outputs()

    # queue=False on the events that only update controls: a full queue must not refuse them.
    model.change(lambda m: model_settings(registry, m, "image2image"), inputs=model,
                 outputs=[steps, guidance, negative, strength, source, variant, fast_decoder],
                 queue=False)
    guidance.change(show_negative_prompt, inputs=[model, guidance], outputs=negative,
                    queue=False)

    def image_to_image(path, prompt, strength, steps, seed, randomize, variant, fast_decoder=None,
                       model_id=model_ids[0], guidance=None, negative_prompt=None,
                       http: gr.Request = None, progress=gr.Progress()):
        request = image_request(path, prompt=prompt, model_id=model_id, variant=variant,
                                strength=strength, steps=steps, seed=None if randomize else seed,
                                fast_decoder=fast_decoder, guidance=guidance,
                                negative_prompt=negative_prompt)
        yield from stream_request(registry, request, runs, http.session_hash, progress)

    gr.on([button.click, prompt.submit], image_to_image,
          inputs=[source, prompt, strength, steps, seed, randomize, variant, fast_decoder, model,
                  guidance, negative],
          outputs=[image, seed_used, info], api_name="image_to_image",
          concurrency_id=GENERATION, concurrency_limit=1)


def image_request(path, **fields) -> Image2Image:
    """An Image2Image request for an uploaded file (opened safely, see requests.load_image)."""
    try:
        picture = load_image(path) if path else None
    except InvalidRequest as e:
        raise user_error(e) from None
    return Image2Image(image=picture, **fields)


def comparison_table(comparison: compare.Comparison) -> str:
    """Markdown: the figures of both runs side by side."""
    fp16, int8 = comparison.runs
    rows = [("total latency", *(f"{run.result.timings['total']:.2f} s" for run in (fp16, int8)))]
    rows += [(stage, *(f"{run.result.timings.get(stage, 0):.2f} s" for run in (fp16, int8)))
             for stage in fp16.result.timings if stage != "total"]
    rows += [("UNet on disk", *(_mb(run.unet_bytes) for run in (fp16, int8))),
             ("pipeline on disk", *(_mb(run.pipeline_bytes) for run in (fp16, int8))),
             ("memory when loaded (RSS growth)", *(_mb(run.rss_growth) for run in (fp16, int8)))]
    lines = ["| | FP16 | INT8 |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append(f"\n**INT8 is {comparison.speedup:.2f}× as fast** in all · PSNR "
                 f"{comparison.psnr:.2f} dB · SSIM {comparison.ssim:.4f} (INT8 against FP16)")
    lines += [f"- {note}" for note in comparison.notes]
    return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def latency_frame(comparison: compare.Comparison) -> pd.DataFrame:
    return pd.DataFrame([{"variant": run.variant.upper(), "stage": stage, "seconds": seconds}
                         for run in comparison.runs
                         for stage, seconds in run.result.timings.items() if stage != "total"])


def comparison_figures(comparison: compare.Comparison) -> dict:
    """Every figure of the comparison, for API users."""
    return {
        "speedup": comparison.speedup,
        "psnr_db": None if comparison.psnr == float("inf") else comparison.psnr,
        "identical": comparison.psnr == float("inf"),
        "ssim": comparison.ssim,
        "notes": comparison.notes,
        **{run.variant: {"seconds": run.result.timings, "unet_bytes": run.unet_bytes,
                         "pipeline_bytes": run.pipeline_bytes, "rss_growth_bytes": run.rss_growth}
           for run in comparison.runs},
    }


def comparison_tab(registry: Registry, model_id: str) -> None:
    spec = catalogue.get(model_id)
    missing = [v for v in compare.VARIANTS if not registry.available(model_id, v)]
    if missing:
        gr.Markdown("To compare, export the missing variant: "
                    + " and ".join(f"`{catalogue.export_command(model_id, v)}`" for v in missing)
                    + ", then restart the app.", elem_id="compare-missing")
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", lines=2, scale=3, value=EXAMPLE_PROMPTS[0])
        with gr.Column(scale=1):
            steps = gr.Slider(label="Steps", minimum=spec.steps.min, maximum=spec.steps.max,
                              value=spec.steps.default, step=1)
            seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED)
            button = gr.Button("Compare FP16 and INT8", variant="primary")
    with gr.Row():
        fp16_image = gr.Image(label="FP16", type="pil", format="png", height=384)
        int8_image = gr.Image(label="INT8", type="pil", format="png", height=384)
    with gr.Row():
        table = gr.Markdown()
        chart = gr.BarPlot(x="variant", y="seconds", color="stage", y_title="seconds",
                           title="Latency per stage")
    figures = gr.JSON(label="All figures", visible=False)

    def run_comparison(prompt, steps, seed, progress=gr.Progress()):
        progress(0, desc="FP16, then INT8 (loading compiles each once)…")
        request = Text2Image(prompt=prompt, model_id=model_id, seed=seed, steps=steps)
        try:
            comparison = compare.compare(registry, request)
        except (InvalidRequest, ModelNotAvailable) as e:
            raise user_error(e) from None
        fp16, int8 = (run.result.image for run in comparison.runs)
        return (fp16, int8, comparison_table(comparison), latency_frame(comparison),
                comparison_figures(comparison))

    # The generation group (see GENERATION): the two runs never share the cores with another
    # generation, so their times are comparable.
    gr.on([button.click, prompt.submit], run_comparison, inputs=[prompt, steps, seed],
          outputs=[fp16_image, int8_image, table, chart, figures], api_name="compare",
          concurrency_id=GENERATION, concurrency_limit=1)


def vega_tab(registry: Registry, model_id: str, runs: Runs) -> None:
    """Segmind-VegaRT: text-to-image and image-to-image in 2-8 LCM steps, with previews."""
    spec = catalogue.get(model_id)
    if spec.stand_in:
        real = catalogue.get(spec.stands_in_for)
        gr.Markdown(
            f"⚠ **{real.name} is not exported here, so this tab serves the {spec.name}**: "
            f"random weights, its images are noise. To serve {real.name}, run "
            f"`{catalogue.export_command(real.id)}` where the Hugging Face Hub is reachable, "
            f"then restart the app.", elem_id="vega-stand-in-banner")
    gr.Markdown(spec.description)
    with gr.Tab("Text-to-Image"):
        vega_text_to_image(registry, spec, runs)
    with gr.Tab("Image-to-Image"):
        vega_image_to_image(registry, spec, runs)


def vega_common_controls(spec):
    """Negative prompt (shown where guidance > 1), steps, guidance."""
    negative = negative_prompt_box(spec)
    steps = range_slider("Steps", spec.steps)
    guidance = guidance_slider(spec)
    guidance.change(lambda g: show_negative_prompt(spec.id, g), inputs=guidance, outputs=negative,
                    queue=False)
    return negative, steps, guidance


def vega_text_to_image(registry: Registry, spec, runs: Runs) -> None:
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(label="Prompt", lines=2,
                                placeholder="Describe the image; Enter generates")
            negative, steps, guidance = vega_common_controls(spec)
            with gr.Row():
                width, height = (range_slider(name, spec.size) for name in ("Width", "Height"))
            seed, randomize = seed_controls()
            variant = variant_choice(registry, spec.id)
            fast_decoder = decoder_choice(registry, spec.id)
            with gr.Row():
                button = gr.Button("Generate", variant="primary")
                stop_button(runs, "vega_stop")
            gr.Examples(EXAMPLE_PROMPTS, inputs=[prompt])
        with gr.Column():
            image, seed_used, info = result_outputs()

    def vega_text_to_image(prompt, negative_prompt, steps, guidance, width, height, seed,
                           randomize, variant, fast_decoder, http: gr.Request = None,
                           progress=gr.Progress()):
        request = Text2Image(prompt=prompt, negative_prompt=negative_prompt, model_id=spec.id,
                             variant=variant, steps=steps, guidance=guidance, width=width,
                             height=height, seed=None if randomize else seed,
                             fast_decoder=fast_decoder)
        yield from stream_request(registry, request, runs, http.session_hash, progress)

    gr.on([button.click, prompt.submit], vega_text_to_image,
          inputs=[prompt, negative, steps, guidance, width, height, seed, randomize, variant,
                  fast_decoder],
          outputs=[image, seed_used, info], api_name="vega_text_to_image",
          concurrency_id=GENERATION, concurrency_limit=1)


def vega_image_to_image(registry: Registry, spec, runs: Runs) -> None:
    with gr.Row():
        with gr.Column():
            source = UploadImage(label="Image (center-cropped to the size)", type="filepath",
                                 sources=["upload", "clipboard"], height=320)
            prompt = gr.Textbox(label="Prompt", lines=2, placeholder="What should it become?")
            negative, steps, guidance = vega_common_controls(spec)
            strength = range_slider("Strength (how much to change)", spec.strength)
            size = range_slider("Size", spec.size)
            seed, randomize = seed_controls()
            variant = variant_choice(registry, spec.id)
            fast_decoder = decoder_choice(registry, spec.id)
            with gr.Row():
                button = gr.Button("Generate", variant="primary")
                stop_button(runs, "vega_stop_image_to_image")
            gr.Examples([[str(IMAGE_EXAMPLE), "a castle on the hills at dusk, oil painting"]],
                        inputs=[source, prompt])
        with gr.Column():
            image, seed_used, info = result_outputs()

    def vega_image_to_image(path, prompt, negative_prompt, strength, steps, guidance, size, seed,
                            randomize, variant, fast_decoder, http: gr.Request = None,
                            progress=gr.Progress()):
        request = image_request(path, prompt=prompt, negative_prompt=negative_prompt,
                                model_id=spec.id, variant=variant, strength=strength,
                                steps=steps, guidance=guidance, width=size, height=size,
                                seed=None if randomize else seed, fast_decoder=fast_decoder)
        yield from stream_request(registry, request, runs, http.session_hash, progress)

    gr.on([button.click, prompt.submit], vega_image_to_image,
          inputs=[source, prompt, negative, strength, steps, guidance, size, seed, randomize,
                  variant, fast_decoder],
          outputs=[image, seed_used, info], api_name="vega_image_to_image",
          concurrency_id=GENERATION, concurrency_limit=1)


def header(registry: Registry, model_ids: list[str]) -> None:
    spec = catalogue.get(model_ids[0])
    gr.Markdown("# turbo-studio\nText-to-image and image-to-image in 1–4 steps with "
                "SDXL-Turbo on OpenVINO, on your CPU.")
    if spec.stand_in:
        real = catalogue.get(catalogue.DEFAULT_MODEL)
        gr.Markdown(
            f"⚠ **No real model is exported here, so this app serves the {spec.name}**: "
            f"random weights, its images are noise. To serve {real.name}, run "
            f"`{catalogue.export_command(real.id, 'fp16')}` where the Hugging Face Hub is "
            f"reachable (about 14 GB of RAM, 7 GB of disk), then restart the app.",
            elem_id="stand-in-banner")
    # A function: gradio renders it again on every page load, so the precision read back from
    # the compiled model shows once a variant is loaded.
    gr.Markdown(lambda: status_line(registry, model_ids), elem_id="status")


def status_line(registry: Registry, model_ids: list[str]) -> str:
    return ("Serving " + "; ".join(model_status(registry, m) for m in model_ids) +
            f"; on **{registry.device}** (OpenVINO sees: {', '.join(openvino_devices())}); each "
            f"variant loads and compiles on first use.")


def model_status(registry: Registry, model_id: str) -> str:
    spec = catalogue.get(model_id)
    variants = ", ".join(exported_variants(registry, model_id))
    compiled = registry.precisions(model_id)
    if compiled:
        precision = ", ".join(f"**{p}** ({v}, as compiled)" for v, p in compiled.items())
    else:
        precision = (f"**{registry.precision_hint or 'device default'}** (asked: "
                     f"{registry.precision}; read back from the model once it is loaded)")
    return (f"**{spec.name}** ({variants}) from {served_from(registry, model_id)}, precision "
            f"{precision}")


def served_from(registry: Registry, model_id: str) -> str:
    """Where the model's variants load from: the models folder, or the Hugging Face cache
    (pre-exported repos)."""
    places = []
    for variant in exported_variants(registry, model_id):
        repo = None if registry.is_exported(model_id, variant) else \
            catalogue.get(model_id).hub_exports[variant]
        place = (f"`{registry.models_dir / model_id}`" if repo is None
                 else f"the Hugging Face cache (`{repo}`)")
        if place not in places:
            places.append(place)
    return " and ".join(places)


def build_demo(registry: Registry | None = None, queue_size: int | None = None) -> gr.Blocks:
    """The app. queue_size bounds the waiting requests (TURBO_QUEUE_SIZE, default 16): past it
    users are told the app is busy instead of piling up work."""
    registry = registry or Registry()
    queue_size = queue_size or int(os.environ.get("TURBO_QUEUE_SIZE", 16))
    model_ids = served_models(registry)
    vega = served_models(registry, (VEGA_MODEL,))[0]
    runs = Runs()
    with gr.Blocks(title="turbo-studio") as demo:
        header(registry, model_ids)
        with gr.Tab("Text-to-Image"):
            text_to_image_tab(registry, model_ids, runs)
        with gr.Tab("Image-to-Image"):
            image_to_image_tab(registry, model_ids, runs)
        with gr.Tab("Segmind-VegaRT"):
            vega_tab(registry, vega, runs)
        with gr.Tab("FP16 vs INT8"):
            comparison_tab(registry, next((m for m in model_ids if "int8" in
                                           catalogue.get(m).variants), catalogue.DEFAULT_MODEL))
    # api_open=False: the REST routes cannot skip the queue (and its bound and per-model limit).
    return demo.queue(max_size=queue_size, api_open=False)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags, each defaulting to its TURBO_* environment variable."""
    env = os.environ.get
    # A Hugging Face Space (SPACE_ID is set there) reaches the app through its own proxy, which
    # needs it on every interface.
    default_host = "0.0.0.0" if env("SPACE_ID") else "127.0.0.1"
    parser = argparse.ArgumentParser(description="turbo-studio web app")
    parser.add_argument("--host", default=env("TURBO_HOST", default_host))
    # String defaults: argparse converts them with `type`, so a bad TURBO_* value gets its
    # usage message too.
    parser.add_argument("--port", type=int, default=env("TURBO_PORT", "7860"))
    parser.add_argument("--share", action="store_true", default=_env_flag("TURBO_SHARE"),
                        help="public gradio.live link (TURBO_SHARE=1)")
    parser.add_argument("--auth", default=env("TURBO_AUTH"), metavar="USER:PASS")
    parser.add_argument("--share-without-auth", action="store_true",
                        help="allow --share without --auth (anyone with the link can use it)")
    parser.add_argument("--device", default=env("TURBO_DEVICE", "CPU"),
                        help="OpenVINO device: CPU, GPU, NPU or AUTO (default %(default)s)")
    parser.add_argument("--models-dir", type=Path, default=default_models_dir(),
                        help="exported models (TURBO_MODELS_DIR; default %(default)s)")
    parser.add_argument("--queue-size", type=int, default=env("TURBO_QUEUE_SIZE", "16"),
                        help="waiting requests before users are told to retry")
    parser.add_argument("--ram-budget-gb", type=float, default=env("TURBO_RAM_BUDGET_GB"),
                        help="RAM for loaded models (default: 3/4 of this machine's)")
    parser.add_argument("--precision", choices=PRECISIONS, default=default_precision(),
                        help="OpenVINO inference precision (TURBO_PRECISION; default %(default)s: "
                             "bf16 where the CPU has it, else f32)")
    args = parser.parse_args(argv)
    if args.precision not in PRECISIONS:  # choices skips the default (TURBO_PRECISION)
        parser.error(f"--precision (TURBO_PRECISION) {args.precision!r}: choose one of "
                     f"{', '.join(PRECISIONS)}")
    if args.queue_size < 1:
        parser.error("--queue-size (TURBO_QUEUE_SIZE) must be at least 1")
    if args.auth and ":" not in args.auth:
        parser.error("--auth takes USER:PASS")
    if args.share and not args.auth and not args.share_without_auth:
        parser.error("--share makes the app public: give --auth USER:PASS (or TURBO_AUTH), "
                     "or --share-without-auth if you really mean it")
    if (problem := check_device(args.device)) is not None:
        parser.error(f"--device {args.device}: {problem}")
    return args


def demo_from(args: argparse.Namespace) -> gr.Blocks:
    budget = int(float(args.ram_budget_gb) * 2**30) if args.ram_budget_gb else None
    registry = Registry(args.models_dir, device=args.device.upper(), ram_budget=budget,
                        precision=args.precision)
    return build_demo(registry, queue_size=args.queue_size)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    demo_from(args).launch(server_name=args.host, server_port=args.port, share=args.share,
                           auth=tuple(args.auth.split(":", 1)) if args.auth else None,
                           **LAUNCH_OPTIONS)


if __name__ == "__main__":
    main()  # builds the app from the flags: one build per process
else:
    # Importable `demo` (tests, `gradio app.py`), configured by the TURBO_* environment.
    demo = demo_from(parse_args([]))
