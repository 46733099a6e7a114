"""Run one validated request on a loaded pipeline: per-request seeded generator, progress per step,
time per stage, and the warnings a user should see."""

import threading
import time
from collections import defaultdict
from typing import Callable

import torch
from PIL import Image

from pipelines import catalogue
from pipelines.requests import Image2Image, Inpaint, Result, Text2Image, seeds, single

# OpenVINO submodels of an optimum-intel SDXL pipeline, and the stage each one's time counts to.
STAGES = {
    "text_encoder": "text encoders",
    "text_encoder_2": "text encoders",
    "vae_encoder": "VAE encoder",
    "unet": "UNet",
    "vae_decoder": "decoder",
}
CLIP_TOKENS = 77

OnStep = Callable[[int, int], None]  # (steps done, steps in all)
OnPreview = Callable[["Image.Image", int, int], None]  # (intermediate image, steps done, in all)


class Stopped(Exception):
    """The run was stopped on request between two steps; nothing was decoded."""

    def __init__(self, done: int, total: int):
        super().__init__(f"Stopped after {done} of {total} steps.")
        self.done, self.total = done, total


class StageClock:
    """Adds up the time spent in each submodel of a pipeline during one call.

    Written by hand: optimum-intel has no per-submodel timing hook. It wraps each part's forward
    on the instance (OVPipelinePart.__call__ looks it up there). One clock per loaded model,
    used only under that model's lock."""

    def __init__(self):
        self.seconds = defaultdict(float)

    def instrument(self, pipeline) -> None:
        for name, stage in STAGES.items():
            part = getattr(pipeline, name, None)
            if part is not None:
                part.forward = self._timed(part.forward, stage)

    def _timed(self, forward, stage):
        def timed_forward(*args, **kwargs):
            start = time.perf_counter()
            try:
                return forward(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
        return timed_forward

    def reset(self) -> None:
        self.seconds.clear()


def truncation_warning(tokenizer, prompt: str) -> str | None:
    """CLIP reads 77 tokens (with start and end); the pipeline drops the rest silently."""
    encoded = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    room = CLIP_TOKENS - 2
    if len(encoded.input_ids) <= room:
        return None
    dropped = prompt[encoded.offset_mapping[room][0]:].strip()  # the user's own text, verbatim
    return (f"The prompt is {len(encoded.input_ids) + 2} CLIP tokens; the model reads only "
            f"{CLIP_TOKENS}, so this end is ignored: “{dropped}”")


def previewer(loaded) -> Callable | None:
    """Latents → a quick intermediate image, through the model's compiled TAESD decoder; None
    where it is not exported (the full VAE would cost as much as a step: no previews then)."""
    if not loaded.has_fast_decoder:
        return None
    fast = loaded.pipelines["text2image", True]

    def preview(latents: torch.Tensor) -> Image.Image:
        # The compiled request itself, not the pipeline part, so the decoder stage's time
        # stays the final decode's; previews are timed apart.
        latents = latents / fast.vae.config.scaling_factor  # 1.0 for TAESD, as the pipeline does
        decoded = fast.vae_decoder.request({"latent_sample": latents.numpy()})
        sample = torch.from_numpy(next(iter(decoded.values())))
        return fast.image_processor.postprocess(sample, output_type="pil")[0]
    return preview


def run(loaded, request: Text2Image, on_step: OnStep | None = None,
        on_preview: OnPreview | None = None, stop: threading.Event | None = None) -> Result:
    """Run a request (as returned by requests.validate) on a registry.Loaded model, one request
    at a time per model. on_preview gets the image after every step of a multi-step run (where
    the fast decoder is exported); setting `stop` ends the run at the next step with Stopped."""
    with loaded.lock:
        return _run_locked(loaded, request, on_step, on_preview, stop)


def run_all(loaded, request: Text2Image, on_step: OnStep | None = None,
            stop: threading.Event | None = None) -> list[Result]:
    """Every image of a batch (request.images), each a run of its own with seed + i.

    One by one rather than one UNet call on a batch: on a CPU one call costs what its images'
    calls add up to (benchmarks.batch_unet: 1.01× on the full-size UNet), while one by one each
    image is the same bytes as when made alone with its seed, shows as soon as it is done, and
    a Stop ends it within a step. The prompt is encoded once: its embeddings are cached."""
    return [run(loaded, single(request, seed), on_step, stop=stop) for seed in seeds(request)]


def _run_locked(loaded, request: Text2Image, on_step: OnStep | None,
                on_preview: OnPreview | None = None, stop: threading.Event | None = None) -> Result:
    is_img2img = isinstance(request, Image2Image)  # inpainting included
    is_inpaint = isinstance(request, Inpaint)
    task = "inpaint" if is_inpaint else "image2image" if is_img2img else "text2image"
    fast_decoder = loaded.fast_decoder(request.fast_decoder)
    pipeline = loaded.pipelines[task, fast_decoder]
    warnings = list(request.notes)
    truncated = truncation_warning(pipeline.tokenizer, request.prompt)
    if truncated:
        warnings.append(truncated)

    denoising_steps = int(request.steps * request.strength) if is_img2img else request.steps

    preview = previewer(loaded) if on_preview and denoising_steps > 1 else None
    preview_seconds = 0.0

    def step_end(pipe, step, timestep, callback_kwargs):
        nonlocal preview_seconds
        if stop is not None and stop.is_set():
            # Raising leaves diffusers' loop at once, skipping the remaining steps and the
            # decode (its interrupt flag would still decode); the lock is released on the way.
            raise Stopped(step + 1, denoising_steps)
        if on_step:
            on_step(step + 1, denoising_steps)
        if preview:
            start = time.perf_counter()
            image = preview(callback_kwargs["latents"])
            preview_seconds += time.perf_counter() - start
            on_preview(image, step + 1, denoising_steps)
        return callback_kwargs

    # Static shapes: recompile here, under the lock, if this size is not the compiled one.
    fit_start = time.perf_counter()
    recompiled = loaded.fit(request.width, request.height, request.guidance)
    fit_seconds = time.perf_counter() - fit_start

    loaded.clock.reset()
    start = time.perf_counter()
    kwargs = dict(
        # The prompt, as cached text embeddings: an unchanged prompt skips the text encoders.
        **loaded.embeddings.kwargs(pipeline, request.prompt, request.negative_prompt,
                                   guided=loaded.spec.guided(request.guidance)),
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        generator=torch.Generator().manual_seed(request.seed),
        callback_on_step_end=step_end,
    )
    if is_img2img:
        kwargs.update(image=request.image, strength=request.strength)
    if is_inpaint:
        kwargs.update(mask_image=request.mask)
    if not is_img2img or is_inpaint:
        # The inpainting pipeline does not take its size from the image but from these (or
        # the UNet's default); the image is already cropped to them.
        kwargs.update(width=request.width, height=request.height)

    image = pipeline(**kwargs).images[0]
    if is_inpaint:
        # The VAE round trip changes every pixel a little; diffusers' overlay puts the source's
        # pixels back outside the mask, so only the painted region changes.
        image = pipeline.image_processor.apply_overlay(request.mask, request.image, image)
    total = time.perf_counter() - start
    timings = dict(loaded.clock.seconds)
    if recompiled:
        timings["recompile for this size"] = fit_seconds
    if preview_seconds:
        timings["previews"] = preview_seconds
    timings["total"] = total + (fit_seconds if recompiled else 0)
    decoder = catalogue.AUTOENCODERS[loaded.spec.fast_decoder].name if fast_decoder else "full VAE"
    return Result(image=image, seed=request.seed, timings=timings, decoder=decoder,
                  warnings=warnings)
