"""One model's parts as openvino.genai components, compiled with one config (the inference
precision hint, threads), and the pipelines built on them; each part imported from the
compiled-model store where it was saved before, and saved there once the model is idle.

openvino.genai serves the optimum-intel folders without torch: its pipelines for text-to-image,
image-to-image and inpainting are built here from one set of compiled components (text encoders,
UNet, each decoder's VAE), so every task and decoder shares one copy of the UNet in memory. With
static shapes the size-dependent parts are reshaped to the request's size and compiled again
only when that size changes."""

import gc
import json
import logging
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openvino as ov
import openvino_genai as genai

from pipelines import compiled_store, frozen_prompt
from pipelines.errors import InvalidSetting, RecompileFailed, summary
from pipelines.layout import VAE_HALVES

TOKENS = 77  # CLIP's prompt length, the text encoders' and UNet's sequence length
# The catalogue's scheduler names (diffusers' classes, which the exported folders name too)
# and the openvino.genai scheduler that runs each.
SCHEDULERS = {
    "EulerAncestralDiscreteScheduler": genai.Scheduler.Type.EULER_ANCESTRAL_DISCRETE,
    "EulerDiscreteScheduler": genai.Scheduler.Type.EULER_DISCRETE,
    "LCMScheduler": genai.Scheduler.Type.LCM,
    "DDIMScheduler": genai.Scheduler.Type.DDIM,
    "PNDMScheduler": genai.Scheduler.Type.PNDM,
    "LMSDiscreteScheduler": genai.Scheduler.Type.LMS_DISCRETE,
}


log = logging.getLogger(__name__)

# openvino.genai's pipeline for each task.
PIPELINES = {"text2image": genai.Text2ImagePipeline, "image2image": genai.Image2ImagePipeline,
             "inpaint": genai.InpaintingPipeline}


def scheduler(name: str, folder_config: Path, options: dict) -> genai.Scheduler:
    """The catalogue's scheduler, configured from the exported folder's scheduler config with
    the catalogue's overrides (e.g. SDXL-Turbo's trailing timesteps): the catalogue decides."""
    if name not in SCHEDULERS:
        raise InvalidSetting(f"Scheduler {name!r} is not one openvino.genai runs; use one of "
                             f"{', '.join(SCHEDULERS)}.")
    config = {**json.loads(folder_config.read_text()), **options, "_class_name": name}
    with tempfile.TemporaryDirectory(prefix="turbo-scheduler-") as tmp:  # read at construction
        path = Path(tmp) / "scheduler_config.json"
        path.write_text(json.dumps(config))
        return genai.Scheduler.from_config(path, SCHEDULERS[name])


def clip_tokenizer(folder: Path):
    """The model's first CLIP tokenizer, from the tokenizer.json optimum-intel's export writes
    (the `tokenizers` library: no torch), to count a prompt's tokens; None without that file."""
    path = folder / "tokenizer" / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


@dataclass(frozen=True)
class Shape:
    batch: int  # of the UNet: 2 with classifier-free guidance, else 1
    height: int  # pixels
    width: int


class CompiledParts:
    """The compiled components of one model and the pipelines on them.

    `compiled` maps a key to a compiled component: "unet", "text_encoder", "text_encoder_2",
    "vae" (the model's own VAE, both halves) and "fast/vae" (its Tiny Autoencoder's)."""

    def __init__(self, folder: Path, autoencoder: Path | None, device: str, config: dict,
                 scheduler: genai.Scheduler, static_shape: Shape | None = None,
                 store: Path | None = None):
        """autoencoder: the TAESD folder, or None. Where it is given, the full VAE is compiled
        only when a request first asks for it (it is read now, so a damaged file is still
        found at load). static_shape: the shape to compile static shapes for first; None
        compiles dynamic shapes, once. store: the compiled-model store's folder
        (compiled_store), or None for none."""
        self.folder, self.autoencoder = folder, autoencoder
        self.device, self.config, self.scheduler = device, config, scheduler
        self.store = store
        self.shape: Shape | None = None  # None: dynamic shapes
        self.recompiles = 0  # reshapes after the first compile, for tests and the benchmark
        self.compile_seconds: dict[str, float] = {}  # per key, the last compile (or import)
        self.compiled: dict[str, object] = {}
        self.imported: set[str] = set()  # keys of the parts imported from the store
        self.saver = compiled_store.Saver(self.compiled)  # parts compiled here, saved when idle
        self._pipelines: dict[tuple[str, bool], object] = {}
        self.kept = frozen_prompt.Kept()  # prompts' frozen encodings, the last few used
        self._tokenizers: tuple | None = None  # for the frozen encoders, on first use
        self._preview: ov.CompiledModel | None = None  # TAESD's decoder, for previews
        self.tokenizer = clip_tokenizer(folder)
        if autoencoder is not None:
            for half in VAE_HALVES:
                ov.Core().read_model(folder / half / "openvino_model.xml")
        encoders = [Part("text_encoder", genai.CLIPTextModel, [folder / "text_encoder"],
                         warm_up=True),
                    Part("text_encoder_2", genai.CLIPTextModelWithProjection,
                         [folder / "text_encoder_2"], warm_up=True)]
        if static_shape:
            self._compile_static(static_shape, encoders)
        else:
            self._compile_parts([*encoders, self._unet_part(), self._vae_part(
                "fast/vae" if autoencoder is not None else "vae")])

    @property
    def static(self) -> bool:
        return self.shape is not None

    def pipeline(self, task: str, fast_decoder: bool, prompt: str | None = None):
        """The openvino.genai pipeline for a task ("text2image", "image2image", "inpaint") with
        the Tiny Autoencoder or the full VAE, built on the shared components on first use (the
        full VAE is compiled then, where it was left for later). With `prompt` (only without
        classifier-free guidance), its text encoders are that prompt's frozen encodings: call
        freeze(prompt) first."""
        if prompt is None:
            pipelines, encoders = self._pipelines, (self.compiled["text_encoder"],
                                                     self.compiled["text_encoder_2"])
        else:
            frozen = self.kept.get(prompt)  # freeze(prompt) first
            pipelines, encoders = frozen.pipelines, frozen.encoders
        key = (task, fast_decoder)
        if key not in pipelines:  # no compile: every pipeline shares the compiled components
            pipelines[key] = PIPELINES[task].stable_diffusion_xl(
                self.scheduler, *encoders, self.compiled["unet"], self._vae(fast_decoder))
        return pipelines[key]

    def reuse(self, prompt: str, asked: bool) -> bool:
        """Whether a request for `prompt` runs on kept encodings (freeze): where it asks to
        (a batch's images, a Live stream's frames), or where its prompt came lately (a re-roll
        with another seed, a slider moved in real-time mode, whichever sessions came between).
        So a prompt asked for again is kept the second time, and the encoders do not run from
        the third on; a prompt asked for once costs nothing more. Call once per request, under
        the model's lock, and only without classifier-free guidance."""
        return self.kept.wanted(prompt, asked)

    def freeze(self, prompt: str) -> float:
        """Keep `prompt`'s text encodings for the pipelines asked for with it, beside the other
        prompts kept (frozen_prompt.Kept). Returns the seconds it took: 0 where this prompt is
        kept already."""
        if prompt in self.kept:
            return 0.0
        start = time.perf_counter()
        if self._tokenizers is None:  # genai's, which it tokenizes with (unread when frozen)
            self._tokenizers = frozen_prompt.tokenizers(self.folder)
        self.kept.put(frozen_prompt.freeze_both(self.compiled, self.folder, self._tokenizers,
                                                prompt))
        return time.perf_counter() - start

    def preview(self, latent: ov.Tensor) -> np.ndarray:
        """A latent decoded by the Tiny Autoencoder, as an RGB uint8 array, on a decoder of its
        own: openvino.genai calls back from another thread while the pipelines run, and an
        infer request is not thread-safe. Compiled on first use (TAESD is small)."""
        if self._preview is None:
            path = self.autoencoder / "vae_decoder" / "openvino_model.xml"
            self._preview = ov.Core().compile_model(path, self.device, self.config)
        sample = next(iter(self._preview({0: latent}).values()))[0]  # [3, H, W] in [-1, 1]
        return (np.clip(sample.transpose(1, 2, 0) / 2 + 0.5, 0, 1) * 255).round().astype(np.uint8)

    def fit(self, shape: Shape) -> bool:
        """With static shapes: reshape and recompile for this request's shape if it differs from
        the current one. Call only under the model's lock. Returns whether it recompiled."""
        if not self.static or shape == self.shape and "unet" in self.compiled:
            return False
        try:
            self._compile_static(shape)
        except Exception as e:
            # The old UNet is gone already (two would not fit) and no new one is compiled: the
            # next request, at any size, compiles its own.
            self.compiled.pop("unet", None)
            raise RecompileFailed(
                f"Could not compile the model for {shape.width}×{shape.height} ({summary(e)});"
                f" try a smaller size.") from e
        self.recompiles += 1
        return True

    def _vae(self, fast_decoder: bool):
        key = "fast/vae" if fast_decoder else "vae"
        if key not in self.compiled:
            self._compile_parts([self._vae_part(key)])
        return self.compiled[key]

    def save_later(self, run_lock: threading.Lock) -> None:
        """After each generation, under `run_lock`: the parts compiled and not saved yet go
        into the store once the model is idle (compiled_store.Saver)."""
        self.saver.after_run(run_lock)

    def forget_unsaved(self) -> None:
        """Save nothing more: the model is being unloaded. Under the run lock."""
        self.saver.forget()

    def wait_saved(self) -> None:
        """Until the saving under way (if any) is done: for tests and the benchmark."""
        self.saver.wait()

    def _compile_parts(self, parts: list["Part"]) -> None:
        """Each part as self.compiled[part.key], timed: imported from the store where it is
        saved there, one after another (OpenVINO sets the process's locale to "C" around a
        blob's read and restores it, so two at once can leave it "C"), else compiled, all of
        these at once (and saved later).

        Why at once: the UNet's compile keeps little more than one core busy, so the other
        parts compile beside it, and the text encoders then run once to repack their weights,
        which their first prompt would otherwise wait for. openvino.genai's compile() and
        infer() release the GIL, its constructors do not: each part is read here and compiled
        on a thread of its own."""
        todo, folders = [], {}
        for part in parts:
            start = time.perf_counter()
            part_folder = None if self.store is None else compiled_store.folder(
                self.store, part.paths, self.device, self.config,
                None if part.reshape is None else self.shape)  # one per size, where reshaped
            component = None if part_folder is None else compiled_store.load(
                part.component, part.paths, self.device, self.config, part_folder)
            if component is not None:
                self.imported.add(part.key)
                self.compiled[part.key] = component
                self.compile_seconds[part.key] = time.perf_counter() - start
                continue
            self.imported.discard(part.key)
            component = part.component(*part.paths)
            if part.reshape is not None:
                part.reshape(component)
            folders[part.key] = part_folder
            todo.append((part, component, start))
        if len(todo) < 2:
            seconds = [self._compile_one(*item) for item in todo]
        else:
            with ThreadPoolExecutor(len(todo), thread_name_prefix="turbo-compile") as pool:
                seconds = list(pool.map(lambda item: self._compile_one(*item), todo))
        for (part, component, _), taken in zip(todo, seconds):
            self.compiled[part.key], self.compile_seconds[part.key] = component, taken
            if folders[part.key] is not None:
                self.saver.unsaved[part.key] = folders[part.key]

    def _compile_one(self, part: "Part", component, start: float) -> float:
        component.compile(self.device, **self.config)
        if part.warm_up:
            component.infer("", "", False)
        return time.perf_counter() - start

    def _unet_part(self) -> "Part":
        shape = self.shape
        return Part("unet", genai.UNet2DConditionModel, [self.folder / "unet"],
                    None if shape is None else  # a compiled component cannot be reshaped
                    lambda unet: unet.reshape(shape.batch, shape.height, shape.width, TOKENS))

    def _vae_part(self, key: str) -> "Part":
        folder, shape = self.autoencoder if key == "fast/vae" else self.folder, self.shape
        return Part(key, genai.AutoencoderKL,  # halves: encoder, then decoder
                    [folder / half for half in VAE_HALVES[::-1]],
                    None if shape is None else
                    lambda vae: vae.reshape(1, shape.height, shape.width))

    def _compile_static(self, shape: Shape, encoders: list["Part"] = ()) -> None:
        # Free the old components and pipelines first: a full-size UNet's two copies would not
        # both fit. The default decoder's VAE is compiled, and the other one if it was in use.
        default = "fast/vae" if self.autoencoder is not None else "vae"
        vaes = [key for key in ("vae", "fast/vae") if key in self.compiled or key == default]
        self._pipelines.clear()
        self.kept.clear()  # their pipelines hold the old UNet
        for key in ("unet", *vaes):
            self.compiled.pop(key, None)
        gc.collect()
        self.shape = shape
        self._compile_parts([*encoders, self._unet_part(), *map(self._vae_part, vaes)])


@dataclass(frozen=True)
class Part:
    """A part to compile: its key in CompiledParts.compiled, its openvino.genai class, the
    folders the class reads, what to reshape it with before compiling (static shapes), and
    whether to run it once after compiling (the text encoders, on an empty prompt: OpenVINO
    repacks a model's weights at its first run)."""
    key: str
    component: type
    paths: list[Path]
    reshape: object = None
    warm_up: bool = False
