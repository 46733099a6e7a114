"""Run one validated request on a loaded pipeline: per-request seeded generator, progress per step,
time per stage, and the warnings a user should see."""

import contextvars
import threading
import time
from collections.abc import Callable

import numpy as np
import openvino as ov
import openvino_genai as genai
from PIL import Image

from pipelines import catalogue
from pipelines.compiled import TOKENS as CLIP_TOKENS
from pipelines.requests import Image2Image, Inpaint, Result, Text2Image, seeds, single

OnStep = Callable[[int, int], None]  # (steps done, steps in all)
OnPreview = Callable[["Image.Image", int, int], None]  # (intermediate image, steps done, in all)


class Stopped(Exception):
    """The run was stopped on request; no image comes of it."""

    def __init__(self, done: int, total: int):
        super().__init__(f"Stopped after {done} of {total} steps.")
        self.done, self.total = done, total


def truncation_warning(tokenizer, prompt: str) -> str | None:
    """CLIP reads 77 tokens (with start and end); the pipeline drops the rest silently. Counted
    with the model's tokenizer (CompiledParts.tokenizer), whose offsets quote the user's own
    text; a model without one gets no warning."""
    if tokenizer is None:
        return None
    encoded = tokenizer.encode(prompt, add_special_tokens=False)
    room = CLIP_TOKENS - 2
    if len(encoded.ids) <= room:
        return None
    dropped = prompt[encoded.offsets[room][0]:].strip()  # the user's own text, verbatim
    return (f"The prompt is {len(encoded.ids) + 2} CLIP tokens; the model reads only "
            f"{CLIP_TOKENS}, so this end is ignored: “{dropped}”")


def _image(tensor: ov.Tensor) -> Image.Image:
    """openvino.genai's image (uint8, [1, H, W, 3]) as a PIL image."""
    return Image.fromarray(np.array(tensor.data[0]))


def _tensor(image: Image.Image) -> ov.Tensor:
    """A PIL image as openvino.genai takes one: uint8, [1, H, W, 3]."""
    return ov.Tensor(np.ascontiguousarray(np.asarray(image.convert("RGB"))[None]))


def previewer(loaded) -> Callable | None:
    """Latents → a quick intermediate image, through the model's own compiled TAESD decoder
    (CompiledParts.preview); None where it is not exported (the full VAE would cost as much as
    a step: no previews then)."""
    if not loaded.has_fast_decoder:
        return None
    return lambda latent: Image.fromarray(loaded.parts.preview(latent))


def timings(metrics) -> dict[str, float]:
    """Seconds per stage of the last run, from openvino.genai's own metrics (milliseconds; the
    UNet's raw per-step durations in microseconds)."""
    stages = {
        "text encoders": sum(metrics.get_text_encoder_infer_duration().values()) / 1e3,
        "VAE encoder": metrics.get_vae_encoder_infer_duration() / 1e3,
        "UNet": sum(metrics.raw_metrics.unet_inference_durations) / 1e6,
        "decoder": metrics.get_vae_decoder_infer_duration() / 1e3,
    }
    return {stage: seconds for stage, seconds in stages.items() if seconds > 0}


def run(loaded, request: Text2Image, on_step: OnStep | None = None,
        on_preview: OnPreview | None = None, stop: threading.Event | None = None) -> Result:
    """Run a request (as returned by requests.validate) on a registry.Loaded model, one request
    at a time per model. on_preview gets the image after the steps of a multi-step run but the
    last (where the fast decoder is exported): surely after the first, the others as long as
    previews keep up with the steps (_StepCallback). Setting `stop` ends the run at one of the
    next steps with Stopped."""
    with loaded.lock:
        result = _run_locked(loaded, request, on_step, on_preview, stop)
        loaded.parts.save_later(loaded.lock)  # what was compiled for it, once idle
        return result


def run_all(loaded, request: Text2Image, on_step: OnStep | None = None,
            stop: threading.Event | None = None) -> list[Result]:
    """Every image of a batch (request.images), each a run of its own with seed + i.

    One by one rather than one UNet call on a batch: on a CPU one call costs about what its
    images' calls add up to (benchmarks.batch_unet on the full-size UNet: 1.01× FP16, 0.95× INT8
    within the runs' spread), while one by one each image is the same bytes as when made alone
    with its seed, shows as soon as it is done, and a Stop ends it within a step. The prompt is
    encoded once for the batch (reuse_prompt)."""
    return [run(loaded, single(request, seed), on_step, stop=stop) for seed in seeds(request)]


class _StepCallback:
    """openvino.genai's step callback for one run: progress, previews and Stop.

    genai calls it on a thread of its own, beside the next step, and drops calls still queued
    when the run ends: the last steps may go unreported (finish() completes the progress), so
    previews are best effort after the first step's, and a Stop is seen a step later. Written by
    hand: genai gives the callback, not this."""

    def __init__(self, total: int, on_step: OnStep | None, on_preview: OnPreview | None,
                 preview: Callable | None, stop: threading.Event | None):
        self.on_step, self.on_preview, self.preview = on_step, on_preview, preview
        self.stop = stop or threading.Event()
        self.done, self.total = 0, total
        self.preview_seconds = 0.0
        self.failure: BaseException | None = None  # raised in a callback, re-raised by finish()
        # The caller's context (gradio's progress reads its event from it) for genai's thread.
        self.context = contextvars.copy_context()

    def __call__(self, step: int, steps: int, latent: ov.Tensor) -> bool:
        """After each step; True ends the run at the next one, before the decoder."""
        return self.context.run(self._report, step, steps, latent)

    def _report(self, step: int, steps: int, latent: ov.Tensor) -> bool:
        if self.failure is not None or self.stop.is_set():
            return True
        try:
            self.done, self.total = step + 1, steps
            if self.on_step:
                self.on_step(self.done, steps)
            if self.preview and self.done < steps:  # the last step's image comes next anyway
                start = time.perf_counter()
                image = self.preview(latent)  # the scheduler's denoised estimate
                self.preview_seconds += time.perf_counter() - start
                self.on_preview(image, self.done, steps)
        except BaseException as e:  # noqa: BLE001 -- it crosses C++: re-raised by finish()
            self.failure = e
            return True
        return False

    def finish(self) -> None:
        """After the run: raise what a callback raised, Stopped if a stop was asked for (even
        if the run went on to the end meanwhile), else complete the progress."""
        if self.failure is not None:
            raise self.failure
        if self.stop.is_set():
            raise Stopped(self.done, self.total)
        if self.on_step and self.done < self.total:
            self.on_step(self.total, self.total)


def _run_locked(loaded, request: Text2Image, on_step: OnStep | None,
                on_preview: OnPreview | None = None, stop: threading.Event | None = None) -> Result:
    is_img2img = isinstance(request, Image2Image)  # inpainting included
    is_inpaint = isinstance(request, Inpaint)
    task = "inpaint" if is_inpaint else "image2image" if is_img2img else "text2image"
    fast_decoder = loaded.fast_decoder(request.fast_decoder)
    warnings = list(request.notes)
    truncated = truncation_warning(loaded.parts.tokenizer, request.prompt)
    if truncated:
        warnings.append(truncated)

    denoising_steps = int(request.steps * request.strength) if is_img2img else request.steps
    preview = previewer(loaded) if on_preview and denoising_steps > 1 else None
    callback = _StepCallback(denoising_steps, on_step, on_preview, preview, stop)

    # Static shapes: recompile here, under the lock, if this size is not the compiled one.
    fit_start = time.perf_counter()
    recompiled = loaded.fit(request.width, request.height, request.guidance)
    fit_seconds = time.perf_counter() - fit_start
    # A prompt that comes again (a batch, a Live stream, a re-roll): its text encodings are
    # kept, where no classifier-free guidance runs (frozen_prompt, CompiledParts.reuse).
    reuse = request.guidance <= 1 and loaded.parts.reuse(request.prompt, request.reuse_prompt)
    prompt = request.prompt if reuse else None
    freeze_seconds = loaded.parts.freeze(prompt) if prompt is not None else 0.0
    pipeline = loaded.pipeline(task, fast_decoder, prompt)

    start = time.perf_counter()
    images = pipeline.generate(*_inputs(request), **_options(loaded, request, callback))
    total = time.perf_counter() - start + freeze_seconds
    callback.finish()
    image = _image(images)
    if is_inpaint:
        # The VAE round trip changes every pixel a little; put the source's pixels back
        # outside the mask, as diffusers' apply_overlay does, so only the painted region
        # changes. By hand: openvino.genai returns the decoded image as it is.
        image = Image.composite(image, request.image.convert("RGB"), request.mask.convert("L"))
    spent = timings(pipeline.get_performance_metrics())
    if freeze_seconds:  # this request ran the real encoders, before the pipeline
        spent["text encoders"] = spent.get("text encoders", 0.0) + freeze_seconds
    if recompiled:
        spent["recompile for this size"] = fit_seconds
    if callback.preview_seconds:
        spent["previews"] = callback.preview_seconds
    spent["total"] = total + (fit_seconds if recompiled else 0)
    decoder = catalogue.AUTOENCODERS[loaded.spec.fast_decoder].name if fast_decoder else "full VAE"
    return Result(image=image, seed=request.seed, timings=spent, decoder=decoder,
                  warnings=warnings)


def _inputs(request: Text2Image) -> list:
    """generate()'s positional arguments: the prompt, and the image and mask where the task
    takes them."""
    inputs = [request.prompt]
    if isinstance(request, Image2Image):
        inputs.append(_tensor(request.image))
    if isinstance(request, Inpaint):
        inputs.append(_tensor(request.mask))
    return inputs


def _options(loaded, request: Text2Image, callback: _StepCallback) -> dict:
    """generate()'s keyword arguments for a request: a generator seeded for this request only."""
    is_img2img = isinstance(request, Image2Image)
    steps = request.steps
    if is_img2img and loaded.spec.scheduler == "LCMScheduler":
        # openvino.genai's LCM spreads all the steps over the strength's part of the schedule
        # (6 steps at strength 0.5 run 6); diffusers and our rule run steps × strength of them.
        steps = callback.total
    options = dict(num_inference_steps=steps, guidance_scale=request.guidance,
                   generator=genai.CppStdGenerator(request.seed), callback=callback)
    if request.negative_prompt:
        options["negative_prompt"] = request.negative_prompt
    if is_img2img:
        options["strength"] = request.strength
    if not is_img2img or isinstance(request, Inpaint):
        # Inpainting takes its size from these (the image is already cropped to them).
        options.update(width=request.width, height=request.height)
    return options
