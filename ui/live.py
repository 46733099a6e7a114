"""The Live tab: every webcam frame (or every change of a sketch) goes through image-to-image,
and the result updates in place.

A frame is an ordinary Image2Image request run by the engine (generate.run): the Tiny
Autoencoder both ways (the full VAE would cost more than the one UNet step), taking turns
with every other user's generations.
Prompt, strength, steps, size and seed stay as set while frames flow. Per session only the
newest frame waits (NewestOnly: on the event loop, holding no thread, a few sessions' frames
running at a time); the browser itself sends no frame while one is pending."""

import html
import time

import gradio as gr
from PIL import Image

from pipelines import catalogue, hub_probe, settings
from pipelines.catalogue import Range
from pipelines.errors import UserError
from pipelines.engine import LocalEngine
from pipelines.realtime import FrameRate, NewestOnly
from pipelines.registry import Registry
from pipelines.requests import MAX_SEED, Image2Image, Result, frame_image, validate
from ui.generation import document, inputs_of
from ui.widgets import model_choice, range_slider, variant_choice, variant_state

# Live sizes: 384² is the default, a balance between detail and frames per second (a frame
# costs about the square of its side; 512² is the model's own size, 256² the fastest).
SIZE = Range(256, 512, 384, 64)
WEBCAM, SKETCH = "Webcam", "Sketch"
DRAW_HINT = "Pick the brush (left of the canvas) and draw: each stroke is transformed."
# How often the browser looks for a new frame to send; it skips while one is pending, so the
# run time, not this, sets the pace (VERIFIED.md: webcam streaming in Chromium).
STREAM_EVERY = 0.1
# Ask the camera for 640×480: every frame travels as a JPEG data URL and is decoded and cropped
# here, and the result is 512² at most (gradio asks for 1920×1440 unless told).
CAMERA = gr.WebcamOptions(constraints={"video": {"width": {"ideal": 640},
                                                 "height": {"ideal": 480}}})


def live_models(registry: Registry, model_ids: list[str]) -> list[str]:
    """The served models that can run live: those that work at the live sizes."""
    return [m for m in model_ids if registry.catalogue.get(m).size.min <= SIZE.min]


def missing_decoder(registry: Registry, model_id: str, variant: str) -> str | None:
    """Why the model cannot run live here, with the command that fixes it; None if it can."""
    spec = registry.catalogue.get(model_id)
    if spec.fast_decoder is None:
        return f"{spec.name} has no Tiny Autoencoder, which live mode decodes every frame with."
    if registry.autoencoder_for(spec, variant) is not None:
        return None
    autoencoder = catalogue.AUTOENCODERS[spec.fast_decoder]
    if autoencoder.hub_export and (size := registry.download_size(model_id, variant)) is not None:
        # Registry.fetch downloads the model's Tiny Autoencoder with it: no command to run.
        return (f"Live mode runs once {spec.name} is here: it downloads "
                f"{hub_probe.gigabytes(size)} (with its Tiny Autoencoder) on the first image. "
                f"Make one in Text-to-Image, then reload this page.")
    if settings.on_space():  # nothing a visitor can run there
        return (f"Live mode needs the Tiny Autoencoder ({autoencoder.name}), which this Space "
                f"does not have.")
    return (f"Live mode encodes and decodes every frame with the Tiny Autoencoder "
            f"({autoencoder.name}), which is not exported here (the full VAE would take "
            f"seconds a frame). Run `{catalogue.export_command(autoencoder.id)}`, then reload "
            f"this page.")


def is_blank(image: Image.Image) -> bool:
    """One colour all over: an empty canvas (nothing to transform yet)."""
    return all(low == high for low, high in image.getextrema())


def sketch_composite(value) -> Image.Image | None:
    """The picture a Sketchpad shows (its composite, on white), or None while it is empty."""
    composite = value.get("composite") if isinstance(value, dict) else value
    image = frame_image(composite)
    return None if image is None or is_blank(image) else image


def frame_info(result: Result, latency: float, fps: float | None) -> str:
    """Markdown under the live image: the rate, the last frame's latency and its stages."""
    rate = f"**{fps:.1f} frames/s**" if fps else "**first frame**"
    stages = " · ".join(f"{stage} {seconds:.2f} s" for stage, seconds in result.timings.items()
                        if stage != "total")
    lines = [f"{rate} · last frame {latency:.2f} s ({stages}) · {result.image.width}×"
             f"{result.image.height} · seed {result.seed}"]
    return "\n".join(lines + [f"- ⚠ {html.escape(w)}" for w in result.warnings])


class Live:
    """The frames of every session of one app: newest only, timed, with user errors as text
    (a stream goes on after a refused frame: the user fixes the prompt, frames resume)."""

    def __init__(self, engine: LocalEngine):
        self.engine = engine
        self.registry = engine.registry
        self.newest = NewestOnly()
        self.rate = FrameRate()

    async def frame(self, session: str, image: Image.Image | None, prompt: str, strength,
                    steps, size, seed, variant: str,
                    model_id: str) -> tuple[Image.Image | None, str | None]:
        """(the result, Markdown with the rate and latency), (None, why) when refused, or
        (None, None) when there is nothing to show: no frame, or a newer one superseded it."""
        arrived = time.perf_counter()
        if image is None:
            return None, None
        try:
            missing = missing_decoder(self.registry, model_id, variant)
            if missing:
                return None, f"⚠ {missing}"
            request = validate(Image2Image(
                image=image, prompt=prompt, strength=strength, steps=steps, width=size,
                height=size, seed=seed, variant=variant, model_id=model_id, fast_decoder=True,
                reuse_prompt=True),
                self.registry.catalogue)
            result = await self.newest.run(session, lambda: self._run(request))
        except UserError as e:
            return None, f"⚠ {html.escape(str(e))}"
        if result is None:
            return None, None
        latency = time.perf_counter() - arrived  # the wait for the model included
        return result.image, frame_info(result, latency, self.rate.tick(session))

    def _run(self, request: Image2Image) -> Result:
        return self.engine.run(request)


def shown(image: Image.Image | None, info: str | None) -> tuple:
    """Outputs for gradio: what is None stays as the page shows it."""
    return (gr.skip() if image is None else image), (gr.skip() if info is None else info)


def live_tab(engine: LocalEngine, model_ids: list[str]) -> dict:
    """Build the tab; return its controls by name ("notice" says what is missing)."""
    registry = engine.registry
    ids = live_models(registry, model_ids)
    if not ids:
        gr.Markdown("Live mode needs a model that works from 256² in one step (SDXL-Turbo); "
                    "none is served here.")
        return {}
    spec = registry.catalogue.get(ids[0])
    live = Live(engine)
    controls = {"notice": gr.Markdown(_notice(registry, ids[0], variant_state(
        registry, ids[0])["value"]), elem_id="live-notice")}
    with gr.Row():
        with gr.Column():
            controls["source"] = gr.Radio([WEBCAM, SKETCH], value=WEBCAM, label="Source")
            controls["frame"] = gr.Image(label="Webcam", sources=["webcam"], streaming=True,
                                         type="numpy", height=320, webcam_options=CAMERA)
            controls["sketch"] = gr.Sketchpad(
                label="Sketch", type="numpy", visible=False, canvas_size=(512, 512),
                height=320, layers=False, placeholder="Pick the brush (left), then draw")
            controls["model_id"] = model_choice(registry, ids)
            controls["prompt"] = gr.Textbox(label="Prompt", lines=2,
                                            value="a watercolor painting, soft light",
                                            placeholder="What should every frame become?")
            controls["strength"] = range_slider("Strength (how much to change)", spec.strength)
            controls["steps"] = range_slider("Steps", spec.img2img_steps,
                                             info="int(steps × strength) UNet steps per frame")
            controls["size"] = range_slider("Size", SIZE, info="Width and height of the result")
            controls["seed"] = gr.Number(label="Seed", value=0, precision=0, minimum=0,
                                         maximum=MAX_SEED)
            controls["variant"] = variant_choice(registry, ids[0])
        with gr.Column():
            controls["outputs"] = [
                gr.Image(label="Live", type="pil", format="jpeg", interactive=False, height=512),
                gr.Markdown(elem_id="live-info")]
    _wire(live, controls)
    return controls


def _notice(registry: Registry, model_id: str, variant: str) -> str:
    missing = missing_decoder(registry, model_id, variant)
    return f"⚠ {missing}" if missing else ""


def refresh(registry: Registry, model_id: str, variant: str) -> tuple[dict, str]:
    """The variant choice and the notice as the models folder is now (page load, a model or
    variant chosen): a Tiny Autoencoder exported since the start is used without a restart."""
    state = variant_state(registry, model_id, variant)
    return gr.update(**state), _notice(registry, model_id, state["value"])


def _wire(live: Live, controls: dict) -> None:
    async def live_frame(frame, prompt, strength, steps, size, seed, variant, model_id,
                   http: gr.Request = None):
        """Transform one frame (a webcam's, or any image) as the prompt says, through the Tiny
        Autoencoder; a newer frame of the same session supersedes one still waiting. Returns
        the image (unchanged when the frame was superseded or refused) and Markdown with the
        frames per second and the last frame's latency, or why the frame was refused.
        """
        try:
            image = frame_image(frame)
        except UserError as e:
            return shown(None, f"⚠ {html.escape(str(e))}")
        return shown(*await live.frame(http.session_hash, image, prompt, strength, steps, size,
                                       seed, variant, model_id))

    async def sketch_frame(sketch, prompt, strength, steps, size, seed, variant, model_id,
                     http: gr.Request = None):
        try:
            image = sketch_composite(sketch)
        except UserError as e:
            return shown(None, f"⚠ {html.escape(str(e))}")
        if image is None:  # a blank canvas (or one just cleared): nothing to transform
            return shown(None, DRAW_HINT)
        return shown(*await live.frame(http.session_hash, image, prompt, strength, steps, size,
                                       seed, variant, model_id))

    document(live_frame)
    settings = inputs_of(live_frame, controls)[1:]
    # Its own unlimited concurrency group, as real-time mode: a frame arrives (and supersedes
    # the waiting one) at once; runs still take turns with everyone's on the run lock.
    common = dict(outputs=controls["outputs"], concurrency_id="live", concurrency_limit=None,
                  show_progress="hidden")
    # One stream event per session runs frame after frame; gradio's client cannot read a
    # stream's messages, and an MCP tool cannot hold a camera: off the API page (API users
    # transform single images with /image_to_image). An exception would end the stream, so
    # refusals come back as text.
    controls["frame"].stream(live_frame, [controls["frame"], *settings], api_name="live_frame",
                             api_visibility="private", stream_every=STREAM_EVERY, **common)
    controls["sketch"].change(sketch_frame, [controls["sketch"], *settings],
                              trigger_mode="always_last", api_visibility="private", **common)
    gr.on([controls["model_id"].change, controls["variant"].change],
          lambda model_id, variant: refresh(live.registry, model_id, variant),
          [controls["model_id"], controls["variant"]], [controls["variant"], controls["notice"]],
          queue=False, api_visibility="private")
    controls["source"].change(_show_source, controls["source"],
                              [controls["frame"], controls["sketch"], controls["outputs"][1]],
                              queue=False, api_visibility="private")


def _show_source(source: str) -> tuple:
    """Show the chosen source; a sketch starts blank, so say what to do first."""
    hint = DRAW_HINT if source == SKETCH else gr.skip()
    return gr.update(visible=source == WEBCAM), gr.update(visible=source == SKETCH), hint
