"""Run one validated request on a loaded pipeline: per-request seeded generator, progress per step,
time per stage, and the warnings a user should see."""

import time
from collections import defaultdict
from typing import Callable

import torch

from pipelines import catalogue
from pipelines.requests import Image2Image, Result, Text2Image

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


def run(loaded, request: Text2Image, on_step: OnStep | None = None) -> Result:
    """Run a request (as returned by requests.validate) on a registry.Loaded model, one request
    at a time per model."""
    with loaded.lock:
        return _run_locked(loaded, request, on_step)


def _run_locked(loaded, request: Text2Image, on_step: OnStep | None) -> Result:
    is_img2img = isinstance(request, Image2Image)
    fast_decoder = loaded.fast_decoder(request.fast_decoder)
    pipeline = loaded.pipelines["image2image" if is_img2img else "text2image", fast_decoder]
    warnings = list(request.notes)
    truncated = truncation_warning(pipeline.tokenizer, request.prompt)
    if truncated:
        warnings.append(truncated)

    denoising_steps = int(request.steps * request.strength) if is_img2img else request.steps

    def step_end(pipe, step, timestep, callback_kwargs):
        if on_step:
            on_step(step + 1, denoising_steps)
        return callback_kwargs

    # Static shapes: recompile here, under the lock, if this size is not the compiled one.
    fit_start = time.perf_counter()
    recompiled = loaded.fit(request.width, request.height, request.guidance)
    fit_seconds = time.perf_counter() - fit_start

    loaded.clock.reset()
    start = time.perf_counter()
    kwargs = dict(
        # The prompt, as cached text embeddings: an unchanged prompt skips the text encoders.
        **loaded.embeddings.kwargs(pipeline, request.prompt, guidance=request.guidance),
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        generator=torch.Generator().manual_seed(request.seed),
        callback_on_step_end=step_end,
    )
    if is_img2img:
        kwargs.update(image=request.image, strength=request.strength)
    else:
        kwargs.update(width=request.width, height=request.height)

    image = pipeline(**kwargs).images[0]
    total = time.perf_counter() - start
    timings = dict(loaded.clock.seconds)
    if recompiled:
        timings["recompile for this size"] = fit_seconds
    timings["total"] = total + (fit_seconds if recompiled else 0)
    decoder = catalogue.AUTOENCODERS[loaded.spec.fast_decoder].name if fast_decoder else "full VAE"
    return Result(image=image, seed=request.seed, timings=timings, decoder=decoder,
                  warnings=warnings)
