"""turbo-studio: the Gradio UI. Builds the Blocks (one function per tab) and wires events to
pipelines/; every model fact comes from pipelines.catalogue.

    python app.py [--host H] [--port N] [--share --auth USER:PASS] [--device CPU|GPU|NPU|AUTO]
                  [--models-dir DIR] [--queue-size N] [--ram-budget-gb GB]

Every flag has a TURBO_* environment variable (see README, Configuration).
"""

import argparse
import html
import os
from pathlib import Path

import gradio as gr
import pandas as pd

from pipelines import catalogue, compare, generate, pngmeta
from pipelines.compiled import PRECISIONS, default_precision
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


def serving_model(registry: Registry) -> str:
    """The first real exported model, else the tiny stand-in (exported now if missing, ~20 s)."""
    real = [model_id for model_id, _ in registry.exported()
            if not catalogue.get(model_id).stand_in]
    if real:
        return real[0]
    if not registry.is_exported(catalogue.STAND_IN, "fp16"):
        from export import export_model  # torch-heavy; only needed this once
        export_model(catalogue.STAND_IN, "fp16", registry.models_dir)
    return catalogue.STAND_IN


def exported_variants(registry: Registry, model_id: str) -> list[str]:
    return [variant for variant in catalogue.get(model_id).variants
            if registry.available(model_id, variant)]


def variant_choice(registry: Registry, model_id: str) -> gr.Radio:
    """FP16 / INT8, listing only the variants exported here."""
    variants = exported_variants(registry, model_id)
    return gr.Radio(variants, value=variants[0], label="Variant",
                    info="INT8: NNCF-quantized UNet, smaller and faster on CPUs with VNNI/AMX")


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
    nothing is shared between users and nothing stays on the server."""
    gallery = gr.Gallery(label="This session's images", format="png", columns=6, height=200,
                         preview=False, elem_classes=["session-gallery"])
    image.change(add_to_gallery, inputs=[image, gallery], outputs=gallery,
                 api_visibility="private", queue=False)
    return gallery


def add_to_gallery(image, gallery):
    if image is None:
        return gr.skip()
    caption = f"seed {image.info['seed']}" if "seed" in image.info else None
    return [(image, caption), *(gallery or [])][:GALLERY_SIZE]


def text_to_image_tab(registry: Registry, model_id: str) -> None:
    spec = catalogue.get(model_id)
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(label="Prompt", lines=2, autofocus=True,
                                placeholder="Describe the image; Enter generates")
            steps = gr.Slider(label="Steps", minimum=spec.steps.min, maximum=spec.steps.max,
                              value=spec.steps.default, step=1)
            with gr.Row():
                width, height = (gr.Slider(label=name, minimum=spec.size.min, maximum=spec.size.max,
                                           value=spec.size.default, step=spec.size.step)
                                 for name in ("Width", "Height"))
            seed, randomize = seed_controls()
            variant = variant_choice(registry, model_id)
            fast_decoder = decoder_choice(registry, model_id)
            realtime = gr.Checkbox(label="Real-time", value=False,
                                   info="Generate as you type, with the seed above kept fixed; "
                                        "the newest prompt replaces one still waiting")
            button = gr.Button("Generate", variant="primary")
            gr.Examples(EXAMPLE_PROMPTS, inputs=[prompt])
        with gr.Column():
            image, seed_used, info = result_outputs()

    def text_to_image(prompt, seed, randomize, steps, width, height, variant, fast_decoder,
                      progress=gr.Progress()):
        request = Text2Image(prompt=prompt, model_id=model_id, variant=variant,
                             seed=None if randomize else seed, steps=steps, width=width,
                             height=height, fast_decoder=fast_decoder)
        result = run_request(registry, request, progress)
        return result.image, result.seed, describe(result)

    gr.on([button.click, prompt.submit], text_to_image,
          inputs=[prompt, seed, randomize, steps, width, height, variant, fast_decoder],
          outputs=[image, seed_used, info], api_name="text_to_image",
          concurrency_id=model_id, concurrency_limit=1)
    realtime_events(registry, model_id, realtime, prompt, seed, steps, width, height, variant,
                    fast_decoder, outputs=[image, seed_used, info])


def realtime_events(registry: Registry, model_id: str, enabled: gr.Checkbox, prompt: gr.Textbox,
                    seed, steps, width, height, variant, fast_decoder, outputs: list) -> None:
    """Real-time mode: typing (or moving a slider) generates. In the browser, always_last keeps
    at most one event pending, with the latest text; gradio has no debounce option, and a timer
    would add its delay to every image, so the time of a run is the debounce. On the server,
    NewestOnly holds each session to one run and one waiting, for API clients too. Its own
    unlimited concurrency group lets a request arrive (and supersede the waiting one) at once;
    generations still take turns on the model's lock."""
    newest = NewestOnly()

    def generate_now(enabled, prompt, seed, steps, width, height, variant, fast_decoder,
                     request: gr.Request, progress=gr.Progress()):
        if not enabled or not prompt.strip():
            return gr.skip()
        text_request = Text2Image(prompt=prompt, model_id=model_id, variant=variant, seed=seed,
                                  steps=steps, width=width, height=height,
                                  fast_decoder=fast_decoder)
        result = newest.run(request.session_hash,
                            lambda: run_request(registry, text_request, progress))
        return gr.skip() if result is None else (result.image, result.seed, describe(result))

    gr.on([prompt.input, steps.release, width.release, height.release], generate_now,
          inputs=[enabled, prompt, seed, steps, width, height, variant, fast_decoder],
          outputs=outputs, api_name="realtime", trigger_mode="always_last",
          concurrency_id=f"realtime-{model_id}", concurrency_limit=None, show_progress="minimal")


def image_to_image_tab(registry: Registry, model_id: str) -> None:
    spec = catalogue.get(model_id)
    with gr.Row():
        with gr.Column():
            source = UploadImage(label=f"Image (center-cropped to {int(spec.size.default)}²)",
                                 type="filepath", sources=["upload", "clipboard"], height=320)
            prompt = gr.Textbox(label="Prompt", lines=2, placeholder="What should it become?")
            strength = gr.Slider(label="Strength (how much to change)",
                                 minimum=spec.strength.min, maximum=spec.strength.max,
                                 value=spec.strength.default, step=spec.strength.step)
            steps = gr.Slider(label="Steps", minimum=spec.img2img_steps.min,
                              maximum=spec.img2img_steps.max, value=spec.img2img_steps.default,
                              step=1)
            seed, randomize = seed_controls()
            variant = variant_choice(registry, model_id)
            fast_decoder = decoder_choice(registry, model_id)
            button = gr.Button("Generate", variant="primary")
            gr.Examples([[str(IMAGE_EXAMPLE), "a castle on the hills at dusk, oil painting"]],
                        inputs=[source, prompt])
        with gr.Column():
            image, seed_used, info = result_outputs()

    def image_to_image(path, prompt, strength, steps, seed, randomize, variant, fast_decoder,
                       progress=gr.Progress()):
        try:
            picture = load_image(path) if path else None
        except InvalidRequest as e:
            raise user_error(e) from None
        request = Image2Image(prompt=prompt, model_id=model_id, variant=variant, image=picture,
                              strength=strength, steps=steps, seed=None if randomize else seed,
                              fast_decoder=fast_decoder)
        result = run_request(registry, request, progress)
        return result.image, result.seed, describe(result)

    gr.on([button.click, prompt.submit], image_to_image,
          inputs=[source, prompt, strength, steps, seed, randomize, variant, fast_decoder],
          outputs=[image, seed_used, info], api_name="image_to_image",
          concurrency_id=model_id, concurrency_limit=1)


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
        gr.Markdown(f"To compare, export the missing variant: "
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

    # One concurrency group with the other tabs: the two runs never share the cores with
    # another generation, so their times are comparable.
    gr.on([button.click, prompt.submit], run_comparison, inputs=[prompt, steps, seed],
          outputs=[fp16_image, int8_image, table, chart, figures], api_name="compare",
          concurrency_id=model_id, concurrency_limit=1)


def header(registry: Registry, model_id: str) -> None:
    spec = catalogue.get(model_id)
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
    gr.Markdown(lambda: status_line(registry, model_id), elem_id="status")


def status_line(registry: Registry, model_id: str) -> str:
    spec = catalogue.get(model_id)
    variants = ", ".join(exported_variants(registry, model_id))
    compiled = registry.precisions(model_id)
    if compiled:
        precision = ", ".join(f"**{p}** ({v}, as compiled)" for v, p in compiled.items())
    else:
        precision = (f"**{registry.precision_hint or 'device default'}** (asked: "
                     f"{registry.precision}; read back from the model once it is loaded)")
    return (f"Serving **{spec.name}** ({variants}) from {served_from(registry, model_id)} "
            f"on **{registry.device}** (OpenVINO sees: {', '.join(openvino_devices())}); "
            f"each variant loads and compiles on first use. Precision: {precision}.")


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
    model_id = serving_model(registry)
    with gr.Blocks(title="turbo-studio") as demo:
        header(registry, model_id)
        with gr.Tab("Text-to-Image"):
            text_to_image_tab(registry, model_id)
        with gr.Tab("Image-to-Image"):
            image_to_image_tab(registry, model_id)
        with gr.Tab("FP16 vs INT8"):
            comparison_tab(registry, model_id)
    # api_open=False: the REST routes cannot skip the queue (and its bound and per-model limit).
    return demo.queue(max_size=queue_size, api_open=False)


def openvino_devices() -> list[str]:
    """The devices OpenVINO finds on this machine, e.g. ['CPU', 'GPU.0', 'NPU']."""
    import openvino as ov

    return ov.Core().available_devices


def check_device(device: str) -> str | None:
    """None if OpenVINO can run on `device` here, else why not. AUTO (OpenVINO picks) always can;
    GPU matches GPU.0, GPU.1, ..."""
    name = device.upper()
    if name.split(":")[0] in ("AUTO", "MULTI", "HETERO"):
        return None
    found = openvino_devices()
    if any(d == name or d.split(".")[0] == name for d in found):
        return None
    return f"OpenVINO sees no {device} device here; it sees: {', '.join(found)} (and AUTO)."


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
    parser.add_argument("--port", type=int, default=int(env("TURBO_PORT", 7860)))
    parser.add_argument("--share", action="store_true", default=_env_flag("TURBO_SHARE"),
                        help="public gradio.live link (TURBO_SHARE=1)")
    parser.add_argument("--auth", default=env("TURBO_AUTH"), metavar="USER:PASS")
    parser.add_argument("--share-without-auth", action="store_true",
                        help="allow --share without --auth (anyone with the link can use it)")
    parser.add_argument("--device", default=env("TURBO_DEVICE", "CPU"),
                        help="OpenVINO device: CPU, GPU, NPU or AUTO (default %(default)s)")
    parser.add_argument("--models-dir", type=Path, default=default_models_dir(),
                        help="exported models (TURBO_MODELS_DIR; default %(default)s)")
    parser.add_argument("--queue-size", type=int, default=int(env("TURBO_QUEUE_SIZE", 16)),
                        help="waiting requests before users are told to retry")
    parser.add_argument("--ram-budget-gb", type=float, default=env("TURBO_RAM_BUDGET_GB"),
                        help="RAM for loaded models (default: 3/4 of this machine's)")
    parser.add_argument("--precision", choices=PRECISIONS, default=default_precision(),
                        help="OpenVINO inference precision (TURBO_PRECISION; default %(default)s: "
                             "bf16 where the CPU has it, else f32)")
    args = parser.parse_args(argv)
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
