"""How each configuration loads and runs one workload, timing every stage.

A runner is made by `load(config, folders)` and called as `runner(workload)` → seconds per
stage ("text encoders", "UNet", "VAE encoder", "decoder") and "total". One configuration runs
in one child process (benchmarks.__main__), so each starts cold and its peak memory is its own."""

import itertools
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.folders import Folders

PROMPT = "a cinematic photo of a red fox in a snowy forest at sunrise, detailed fur"
SEED = 42


@dataclass(frozen=True)
class Workload:
    """One timed call. New kinds of work (batches, say) add a field here with a default that
    keeps the others as they are, and the runners read it."""
    key: str
    label: str
    steps: int
    strength: float | None = None  # image-to-image when set
    size: int = 512
    # A turbo-studio feature that needs the Tiny Autoencoder (both ways): configurations
    # without it, and the peers, are reported as "–".
    live: bool = False
    unit: str = "s"  # "fps": the report shows frames per second, 1 / the median total
    # A batch: one request for this many images (seed + i each); runners report seconds per
    # image (every stage divided by it), to compare with W1.
    images: int = 1
    # Live streams taking turns on one model, each with its own prompt: the runs alternate
    # between this many prompts.
    sessions: int = 1

    def runs_on(self, config: "Config") -> bool:
        return not self.live or (config.runtime == "turbo" and config.fast_decoder)


def _live_frame(key: str, size: int, sessions: int = 1) -> Workload:
    """A Live tab frame: image-to-image at strength 0.5 and 2 steps, so one UNet step."""
    streams = (f", {sessions} streams taking turns, each its own prompt" if sessions > 1
               else "")
    return Workload(key, f"live frame {size}² (image-to-image, 1 UNet step, TAESD both ways, "
                         f"the stream's prompt encodings kept{streams})",
                    steps=2, strength=0.5, size=size, live=True, unit="fps", sessions=sessions)


WORKLOADS = {w.key: w for w in (
    Workload("W1", "text-to-image 512², 1 step", steps=1),
    Workload("W2", "image-to-image 512², 2 steps, strength 0.5", steps=2, strength=0.5),
    Workload("W3", "text-to-image 512², 4 steps", steps=4),
    _live_frame("W4a", 256), _live_frame("W4b", 384), _live_frame("W4c", 512),
    _live_frame("W4s", 384, sessions=2),
    Workload("W5", "a batch of 4, text-to-image 512², 1 step (seconds per image; its prompt "
                   "encoded once)", steps=1, images=4),
)}


def per_image(timings: dict, images: int) -> dict:
    """A batch's seconds per stage and in all, per image."""
    return {stage: seconds / images for stage, seconds in timings.items()}


def generators(images: int) -> list:
    """Image i's generator seeded with SEED + i, as turbo-studio seeds a batch: diffusers
    draws each image's noise from its own generator."""
    import torch

    return [torch.Generator().manual_seed(SEED + i) for i in range(images)]


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    runtime: str  # optimum | genai | torch | turbo
    variant: str = "fp16"  # a Folders variant: fp16 | int8 | int8-weights, "+taesd" for TAESD
    static: bool = False  # shapes fixed to 512² before compiling
    options: tuple = ()  # turbo-studio Registry options, as (name, value) pairs

    @property
    def fast_decoder(self) -> bool:
        return self.variant.endswith("+taesd")

    @property
    def needs(self) -> set[str]:
        """What benchmarks.folders.prepare must build for this configuration. turbo-studio's
        INT8 variant decodes with the INT8 TAESD where it is exported (Registry.autoencoder_for);
        the peers' views link the FP16 one."""
        base = self.variant.partition("+")[0]
        return {base} | ({"taesd"} if self.fast_decoder else set()) | (
            {"taesd-int8"} if self._int8_taesd else set()) | (
            {"torch"} if self.runtime == "torch" else set())

    @property
    def _int8_taesd(self) -> bool:
        return self.runtime == "turbo" and self.variant == "int8+taesd"

    @property
    def int8_stages(self) -> frozenset:
        """The stages that compute in INT8 (fully quantized: u8 activations, i8 weights), for
        the compute floor; "int8-weights" only stores INT8 and computes in bf16."""
        unet = {"UNet"} if self.variant.partition("+")[0] == "int8" else set()
        return frozenset(unet | ({"decoder", "VAE encoder"} if self._int8_taesd else set()))


CONFIGS = {c.key: c for c in (
    Config("a0", "optimum-intel out of the box (FP16, full VAE, dynamic)", "optimum"),
    Config("a", "OpenVINO notebook (INT8 UNet + TAESD, dynamic)", "optimum", "int8+taesd"),
    Config("b", "FastSD CPU way (INT8 weights + TAESD, static)", "optimum",
           "int8-weights+taesd", static=True),
    Config("c-fp16", "openvino.genai (FP16, full VAE)", "genai"),
    Config("c-int8", "openvino.genai (INT8 UNet + TAESD)", "genai", "int8+taesd"),
    Config("d", "diffusers on PyTorch (bf16)", "torch"),
    Config("e-fp16", "turbo-studio FP16", "turbo"),
    Config("e-fp16-taesd", "turbo-studio FP16 + TAESD", "turbo", "fp16+taesd"),
    Config("e-int8", "turbo-studio INT8", "turbo", "int8"),
    Config("e-int8-taesd", "turbo-studio INT8 + TAESD", "turbo", "int8+taesd"),
    Config("e-fp16-taesd-static", "turbo-studio FP16 + TAESD, static shapes", "turbo",
           "fp16+taesd", options=(("static_shapes", True),)),
    Config("e-int8-taesd-static", "turbo-studio INT8 + TAESD, static shapes", "turbo",
           "int8+taesd", options=(("static_shapes", True),)),
)}


def source_image(size: int) -> Image.Image:
    """A deterministic picture to transform (the benchmark needs no asset)."""
    return Image.radial_gradient("L").convert("RGB").resize((size, size))


def load(config: Config, folders: Folders):
    return {"optimum": _optimum, "genai": _genai, "torch": _torch,
            "turbo": _turbo}[config.runtime](config, folders)


def _timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


# OpenVINO submodels of an optimum-intel SDXL pipeline, and the stage each one's time counts to.
STAGES = {
    "text_encoder": "text encoders",
    "text_encoder_2": "text encoders",
    "vae_encoder": "VAE encoder",
    "unet": "UNet",
    "vae_decoder": "decoder",
}
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


def _optimum(config: Config, folders: Folders):
    """optimum-intel's own pipelines, as their users write them: from_pretrained on the folder;
    the image-to-image class is loaded when first needed (a second copy, as users do)."""
    from optimum.intel import OVStableDiffusionXLImg2ImgPipeline, OVStableDiffusionXLPipeline

    folder = str(folders.variant(config.variant))
    pipes, clock = {}, StageClock()

    def pipeline(img2img: bool):
        if img2img not in pipes:
            pipes.clear()  # one pipeline in memory at a time, as a user script would hold
            cls = OVStableDiffusionXLImg2ImgPipeline if img2img else OVStableDiffusionXLPipeline
            pipe = cls.from_pretrained(folder)
            if config.static:  # H and W fixed, batch left dynamic: optimum's reshape would
                pipe.reshape(batch_size=-1, height=512, width=512,  # double a static batch
                             num_images_per_prompt=1)  # for guidance, and Turbo runs at 0
                pipe.compile()
            pipe.set_progress_bar_config(disable=True)
            clock.instrument(pipe)
            pipes[img2img] = pipe
        return pipes[img2img]

    pipeline(False)

    def run(workload: Workload) -> dict:
        import torch

        kwargs = dict(prompt=PROMPT, num_inference_steps=workload.steps, guidance_scale=0.0,
                      generator=torch.Generator().manual_seed(SEED))
        if workload.strength:
            kwargs.update(image=source_image(workload.size), strength=workload.strength)
        else:
            kwargs.update(width=workload.size, height=workload.size)
        if workload.images > 1:  # one call on the batch, as optimum-intel's users write it
            kwargs.update(num_images_per_prompt=workload.images,
                          generator=generators(workload.images))
        pipe = pipeline(bool(workload.strength))
        clock.reset()
        total, _ = _timed(lambda: pipe(**kwargs))
        return per_image({**clock.seconds, "total": total}, workload.images)
    return run


def _genai(config: Config, folders: Folders):
    """openvino.genai's C++ pipelines on the same folders."""
    import openvino as ov
    import openvino_genai as genai

    from pipelines.generate import timings

    folder = folders.variant(config.variant)
    pipes = {}

    def pipeline(img2img: bool):
        if img2img not in pipes:
            pipes.clear()
            cls = genai.Image2ImagePipeline if img2img else genai.Text2ImagePipeline
            pipes[img2img] = cls(folder, "CPU")
        return pipes[img2img]

    pipeline(False)

    def run(workload: Workload) -> dict:
        kwargs = dict(num_inference_steps=workload.steps, guidance_scale=0.0, rng_seed=SEED,
                      num_images_per_prompt=workload.images)
        if workload.strength:
            image = np.asarray(source_image(workload.size))[None]
            kwargs.update(image=ov.Tensor(image), strength=workload.strength)
        else:
            kwargs.update(width=workload.size, height=workload.size)
        pipe = pipeline(bool(workload.strength))
        total, _ = _timed(lambda: pipe.generate(PROMPT, **kwargs))
        stages = timings(pipe.get_performance_metrics())  # genai's metrics, read as we read ours
        return per_image({**stages, "total": total}, workload.images)
    return run


def _torch(config: Config, folders: Folders):
    """diffusers on PyTorch's CPU backend in bf16, from the same architecture's diffusers folder."""
    import torch
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    text2image = StableDiffusionXLPipeline.from_pretrained(folders.torch_source,
                                                           torch_dtype=torch.bfloat16)
    image2image = StableDiffusionXLImg2ImgPipeline.from_pipe(text2image)  # shares the modules
    seconds = {}
    _instrument_torch(text2image, seconds)

    def run(workload: Workload) -> dict:
        kwargs = dict(prompt=PROMPT, num_inference_steps=workload.steps, guidance_scale=0.0,
                      generator=torch.Generator().manual_seed(SEED))
        if workload.strength:
            pipe = image2image
            kwargs.update(image=source_image(workload.size), strength=workload.strength)
        else:
            pipe = text2image
            kwargs.update(width=workload.size, height=workload.size)
        if workload.images > 1:
            kwargs.update(num_images_per_prompt=workload.images,
                          generator=generators(workload.images))
        pipe.set_progress_bar_config(disable=True)
        seconds.clear()
        with torch.inference_mode():
            total, _ = _timed(lambda: pipe(**kwargs))
        return per_image({**seconds, "total": total}, workload.images)
    return run


def _instrument_torch(pipe, seconds: dict) -> None:
    """Add up the time in each torch module, as StageClock does for OpenVINO
    parts. Written by hand: diffusers has no per-module timing hook."""
    targets = [(pipe.text_encoder, "forward", "text encoders"),
               (pipe.text_encoder_2, "forward", "text encoders"),
               (pipe.unet, "forward", "UNet"), (pipe.vae, "encode", "VAE encoder"),
               (pipe.vae, "decode", "decoder")]
    for module, method, stage in targets:
        original = getattr(module, method)

        def timed(*args, _original=original, _stage=stage, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                seconds[_stage] = seconds.get(_stage, 0.0) + time.perf_counter() - start
        setattr(module, method, timed)


def _turbo(config: Config, folders: Folders):
    """turbo-studio's own serving path: registry.get and generate.run, as the app calls them."""
    from pipelines import generate
    from pipelines.registry import Registry
    from pipelines.requests import Image2Image, Text2Image, validate

    registry = Registry(folders.models_dir, cache_dir=cache_dir(config, folders),
                        **dict(config.options))
    loaded = registry.get(folders.model_id, config.variant.partition("+")[0])
    batches, turns = itertools.count(1), itertools.count()

    def run(workload: Workload) -> dict:
        # A live frame repeats its stream's prompt (its encodings kept, as the Live tab keeps
        # them); streams taking turns alternate theirs. Every other run gets a prompt not seen
        # before: a prompt asked for again runs on kept encodings too (a re-roll), which the
        # peers' runs would not.
        if workload.live:
            stream = next(turns) % workload.sessions
            prompt = PROMPT if stream == 0 else f"{PROMPT}, stream {stream + 1}"
        else:
            prompt = f"{PROMPT}, take {next(batches)}"
        common = dict(prompt=prompt, model_id=folders.model_id, seed=SEED, steps=workload.steps,
                      variant=loaded.variant, fast_decoder=config.fast_decoder,
                      images=workload.images, reuse_prompt=workload.live)
        if workload.strength:
            request = Image2Image(image=source_image(workload.size), strength=workload.strength,
                                  width=workload.size, height=workload.size, **common)
        else:
            request = Text2Image(width=workload.size, height=workload.size, **common)
        results = generate.run_all(loaded, validate(request))  # a batch as the app runs it
        stages = {stage for result in results for stage in result.timings}
        return per_image({stage: sum(r.timings.get(stage, 0.0) for r in results)
                          for stage in stages}, workload.images)
    run.from_cache = loaded.from_cache  # whether this start imported every part
    run.wait_saved = loaded.parts.wait_saved  # the parts compiled, saved after the first image
    # Read when the child is done, so a part compiled on first use is in it too.
    run.load_per_part = loaded.parts.compile_seconds
    return run


def cache_dir(config: Config, folders: Folders) -> Path:
    """Each turbo-studio configuration's own compiled-model cache: its first start empties it,
    its second start reads it, whatever the configurations between them compiled."""
    return folders.models_dir / ".ov-cache-bench" / config.key
