"""turbo-studio: the Gradio UI. Builds the Blocks (one function per tab) and wires events to
pipelines/; every model fact comes from pipelines.catalogue.

    python app.py [--host H] [--port N] [--share --auth USER:PASS]
"""

import argparse
import html
import os
from pathlib import Path

import gradio as gr

from pipelines import catalogue, generate
from pipelines.registry import ModelNotAvailable, Registry
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


def serving_model(registry: Registry) -> tuple[str, str]:
    """The first real exported model, else the tiny stand-in (exported now if missing, ~20 s)."""
    real = [key for key in registry.exported() if not catalogue.get(key[0]).stand_in]
    if real:
        return real[0]
    if not registry.is_exported(catalogue.STAND_IN, "fp16"):
        from export import export_model  # torch-heavy; only needed this once
        export_model(catalogue.STAND_IN, "fp16", registry.models_dir)
    return catalogue.STAND_IN, "fp16"


def describe(result: Result) -> str:
    """Markdown shown under the image: seed, time per stage, warnings."""
    stages = " · ".join(f"{stage} {seconds:.2f} s" for stage, seconds in result.timings.items()
                        if stage != "total")
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
        progress(0, desc="Loading the model (first use compiles it)…")
        loaded = registry.get(request.model_id, request.variant)
        result = generate.run(loaded, request,
                              on_step=lambda done, total: progress((done, total), desc="Denoising"))
    except (InvalidRequest, ModelNotAvailable) as e:
        raise user_error(e) from None
    for warning in result.warnings:
        gr.Warning(html.escape(warning))
    return result


def seed_controls() -> tuple[gr.Number, gr.Checkbox]:
    with gr.Row():
        seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED)
        randomize = gr.Checkbox(label="Random seed", value=True)
    return seed, randomize


def result_outputs() -> tuple[gr.Image, gr.Number, gr.Markdown]:
    image = gr.Image(label="Result", type="pil", format="png", height=512)
    seed_used = gr.Number(label="Seed used", precision=0, interactive=False)
    info = gr.Markdown()
    return image, seed_used, info


def text_to_image_tab(registry: Registry, model_id: str, variant: str) -> None:
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
            button = gr.Button("Generate", variant="primary")
            gr.Examples(EXAMPLE_PROMPTS, inputs=[prompt])
        with gr.Column():
            image, seed_used, info = result_outputs()

    def text_to_image(prompt, seed, randomize, steps, width, height, progress=gr.Progress()):
        request = Text2Image(prompt=prompt, model_id=model_id, variant=variant,
                             seed=None if randomize else seed, steps=steps, width=width,
                             height=height)
        result = run_request(registry, request, progress)
        return result.image, result.seed, describe(result)

    gr.on([button.click, prompt.submit], text_to_image,
          inputs=[prompt, seed, randomize, steps, width, height],
          outputs=[image, seed_used, info], api_name="text_to_image",
          concurrency_id=model_id, concurrency_limit=1)


def image_to_image_tab(registry: Registry, model_id: str, variant: str) -> None:
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
            button = gr.Button("Generate", variant="primary")
            gr.Examples([[str(IMAGE_EXAMPLE), "a castle on the hills at dusk, oil painting"]],
                        inputs=[source, prompt])
        with gr.Column():
            image, seed_used, info = result_outputs()

    def image_to_image(path, prompt, strength, steps, seed, randomize, progress=gr.Progress()):
        try:
            picture = load_image(path) if path else None
        except InvalidRequest as e:
            raise user_error(e) from None
        request = Image2Image(prompt=prompt, model_id=model_id, variant=variant, image=picture,
                              strength=strength, steps=steps, seed=None if randomize else seed)
        result = run_request(registry, request, progress)
        return result.image, result.seed, describe(result)

    gr.on([button.click, prompt.submit], image_to_image,
          inputs=[source, prompt, strength, steps, seed, randomize],
          outputs=[image, seed_used, info], api_name="image_to_image",
          concurrency_id=model_id, concurrency_limit=1)


def header(registry: Registry, model_id: str, variant: str) -> None:
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
    gr.Markdown(f"Serving **{spec.name}** ({variant}) from `{registry.folder(model_id, variant)}`"
                f" on {registry.device}; it loads and compiles on first use.", elem_id="status")


def build_demo(registry: Registry | None = None, queue_size: int | None = None) -> gr.Blocks:
    """The app. queue_size bounds the waiting requests (TURBO_QUEUE_SIZE, default 16): past it
    users are told the app is busy instead of piling up work."""
    registry = registry or Registry()
    queue_size = queue_size or int(os.environ.get("TURBO_QUEUE_SIZE", 16))
    model_id, variant = serving_model(registry)
    with gr.Blocks(title="turbo-studio") as demo:
        header(registry, model_id, variant)
        with gr.Tab("Text-to-Image"):
            text_to_image_tab(registry, model_id, variant)
        with gr.Tab("Image-to-Image"):
            image_to_image_tab(registry, model_id, variant)
    # api_open=False: the REST routes cannot skip the queue (and its bound and per-model limit).
    return demo.queue(max_size=queue_size, api_open=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="turbo-studio web app")
    parser.add_argument("--host", default=os.environ.get("TURBO_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("TURBO_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="public gradio.live link")
    parser.add_argument("--auth", default=os.environ.get("TURBO_AUTH"), metavar="USER:PASS")
    parser.add_argument("--share-without-auth", action="store_true",
                        help="allow --share without --auth (anyone with the link can use it)")
    args = parser.parse_args(argv)
    if args.auth and ":" not in args.auth:
        parser.error("--auth takes USER:PASS")
    if args.share and not args.auth and not args.share_without_auth:
        parser.error("--share makes the app public: give --auth USER:PASS (or TURBO_AUTH), "
                     "or --share-without-auth if you really mean it")
    return args


demo = build_demo()

if __name__ == "__main__":
    args = parse_args()
    demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                auth=tuple(args.auth.split(":", 1)) if args.auth else None, **LAUNCH_OPTIONS)
