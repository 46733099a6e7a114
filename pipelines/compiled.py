"""Compiling one model's OpenVINO parts: the inference precision hint, the compiled-model cache,
and static shapes (reshape to the request's batch and size, recompile only when that changes).

The registry builds every pipeline of a model on these compiled parts (optimum-intel's
compile_only), so one copy of each part serves text-to-image and image-to-image with either
decoder, before and after a reshape."""

import gc
import json
import time
from dataclasses import dataclass
from pathlib import Path

import openvino as ov

from pipelines.errors import InvalidSetting
from pipelines.layout import VAE_HALVES
from pipelines.settings import PRECISIONS

# Parts whose input shapes depend on the image size. The text encoders always read 77 tokens.
RESHAPEABLE = ("unet", *VAE_HALVES)


def precision_hint(precision: str, device: str, core: ov.Core) -> str | None:
    """The INFERENCE_PRECISION_HINT to compile with. "auto": bf16 where the CPU has it (what
    OpenVINO itself picks on AVX512_BF16 / AMX), else f32; on other devices their own default
    (None)."""
    if precision not in PRECISIONS:
        raise InvalidSetting(f"Precision must be one of {', '.join(PRECISIONS)} "
                             f"(TURBO_PRECISION / --precision), not {precision!r}.")
    if precision != "auto":
        return precision
    if device.upper() != "CPU":
        return None
    return "bf16" if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"


def precision_of(compiled: ov.CompiledModel) -> str:
    """The precision a compiled model really runs in, as OpenVINO reports it (a CPU without
    fp16 arithmetic runs an f16 hint in bf16 or f32)."""
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


@dataclass(frozen=True)
class Shape:
    batch: int  # of the UNet: 2 with classifier-free guidance, else 1
    height: int  # pixels
    width: int


class CompiledParts:
    """Every OpenVINO part of one loaded model, compiled with one config.

    `files` maps a key to an IR file: the model's parts by their optimum-intel names, and
    "fast/vae_decoder", "fast/vae_encoder" for a Tiny Autoencoder. With static shapes the
    size-dependent parts keep their ov.Model (weights memory-mapped) to be reshaped."""

    def __init__(self, files: dict[str, Path], device: str, config: dict,
                 static_shape: Shape | None = None, deferred: tuple[str, ...] = ()):
        """static_shape: the shape to compile static shapes for first; None compiles dynamic
        shapes, once. deferred: keys of dynamic parts to compile only when first used (the
        full VAE where TAESD decodes by default)."""
        self.core = ov.Core()
        self.device, self.config = device, config
        self.shape: Shape | None = None  # None: dynamic shapes
        self.recompiles = 0  # reshapes after the first compile, for tests and the benchmark
        self.compile_seconds: dict[str, float] = {}  # per key, the last compile (or cache load)
        self._pipelines: list[tuple[object, bool]] = []  # (pipeline, fast decoder) to keep in sync
        self._files = files
        self._models = {key: self.core.read_model(path) for key, path in files.items()
                        if static_shape and _part(key) in RESHAPEABLE}
        self._deferred = {key for key in deferred if key not in self._models}
        for key in self._deferred:  # read now (cheap: weights memory-mapped, not compiled), so
            self.core.read_model(files[key])  # a damaged file is found at load, not mid-request
        self.compiled = {}
        # One after another, not at once (3 s sooner of 25 s): OpenVINO sets the process's
        # locale to "C" around each compile-cache read or write and restores it, so two at once
        # can leave it "C" (../shared/API-NOTES.md), and Python's text files then read ASCII.
        for key in files:
            if key not in self._models and key not in self._deferred:
                self._compile_file(key)
        self._scale = _vae_scale_factor(files["vae_decoder"].parent / "config.json")
        if static_shape:
            self._compile_static(static_shape)

    def _compile_file(self, key: str) -> ov.CompiledModel:
        # Dynamic parts compile from their file: OpenVINO then keys the cache on the file (not a
        # hash of every weight) and memory-maps the cached blob.
        start = time.perf_counter()
        self.compiled[key] = self.core.compile_model(self._files[key], self.device, self.config)
        self.compile_seconds[key] = time.perf_counter() - start
        return self.compiled[key]

    def compile_deferred(self, key: str) -> ov.CompiledModel:
        """A deferred part, compiled now if it is not yet; every pipeline then holds it."""
        if key not in self.compiled:
            self._compile_file(key)
            self._sync()
        return self.compiled[key]

    @property
    def static(self) -> bool:
        return self.shape is not None

    def parts(self, fast_decoder: bool) -> dict[str, ov.CompiledModel]:
        """Compiled parts by optimum-intel name, with the Tiny Autoencoder's VAE halves if asked;
        a deferred part not compiled yet as a stand-in that compiles it when first used."""
        keys = [*self.compiled, *(key for key in self._deferred if key not in self.compiled)]
        return {_part(key): self.compiled[key] if key in self.compiled else _OnFirstUse(self, key)
                for key in keys
                if key.startswith("fast/") == fast_decoder or _part(key) not in VAE_HALVES}

    def attach(self, pipeline, fast_decoder: bool) -> None:
        """Keep this pipeline's parts in step with every later reshape."""
        self._pipelines.append((pipeline, fast_decoder))

    def fit(self, shape: Shape) -> bool:
        """With static shapes: reshape and recompile for this request's shape if it differs from
        the current one. Call only under the model's lock. Returns whether it recompiled."""
        if not self.static or shape == self.shape:
            return False
        self._compile_static(shape)
        self.recompiles += 1
        return True

    def _compile_static(self, shape: Shape) -> None:
        # Free the old compiled parts first: a full-size UNet's two copies would not both fit.
        for key in self._models:
            self.compiled.pop(key, None)
        self._sync()
        gc.collect()
        for key, model in self._models.items():
            start = time.perf_counter()
            model.reshape(self._input_shapes(_part(key), model, shape))
            self.compiled[key] = self.core.compile_model(model, self.device, self.config)
            self.compile_seconds[key] = time.perf_counter() - start
        self.shape = shape
        self._sync()

    def _input_shapes(self, part: str, model: ov.Model, shape: Shape) -> dict:
        """Written by hand rather than optimum-intel's pipeline.reshape(), which doubles the UNet
        batch whenever the UNet has no timestep_cond input (it assumes guidance > 1): SDXL-Turbo
        runs at guidance 0 with a batch of 1, and that reshape would make every call fail."""
        latent = [shape.height // self._scale, shape.width // self._scale]
        pixels = [shape.height, shape.width]
        shapes = {}
        for port in model.inputs:
            dims = port.get_partial_shape()
            name = port.get_any_name()
            if part == "vae_decoder":
                shapes[port] = [1, dims[1], *latent]
            elif part == "vae_encoder":
                shapes[port] = [1, dims[1], *pixels]
            elif name == "sample":
                shapes[port] = [shape.batch, dims[1], *latent]
            elif name == "timestep":
                shapes[port] = dims if dims.rank.get_length() == 0 else [1]  # one timestep per call
            else:  # encoder_hidden_states, text_embeds, time_ids, timestep_cond: batch first
                dims[0] = shape.batch
                shapes[port] = dims
        return shapes

    def _sync(self) -> None:
        """Point every attached pipeline's parts at the current compiled models (None while
        recompiling). With compile_only, optimum-intel calls part.request, which is part.model."""
        for pipeline, fast_decoder in self._pipelines:
            parts = self.parts(fast_decoder)
            for name in RESHAPEABLE:
                part = getattr(pipeline, name, None)
                if part is not None:
                    part.model = part.request = parts.get(name)


class _OnFirstUse:
    """Holds a deferred part's place in a pipeline: the first call or attribute read (optimum-
    intel reads the VAE decoder's input shapes before each run) compiles the part, and every
    pipeline then holds the compiled model itself. By hand: optimum-intel compiles lazily only
    models it has read itself, not the shared compiled parts (compile_only) the registry gives."""

    def __init__(self, parts: CompiledParts, key: str):
        self._parts, self._key = parts, key

    def __getattr__(self, name: str):
        if name.startswith("__"):  # copy, pickle and repr probing: no reason to compile
            raise AttributeError(name)
        return getattr(self._parts.compile_deferred(self._key), name)

    def __call__(self, *args, **kwargs):
        return self._parts.compile_deferred(self._key)(*args, **kwargs)


def _part(key: str) -> str:
    return key.removeprefix("fast/")


def _vae_scale_factor(config: Path) -> int:
    """Pixels per latent, as diffusers computes it from the VAE's blocks (8 for SDXL)."""
    return 2 ** (len(json.loads(config.read_text())["block_out_channels"]) - 1)


def from_exported(pipeline_class, folder: Path, **options):
    """`pipeline_class.from_pretrained` on an exported local folder, without the Hub look-up
    optimum-intel 2.2.0 makes first. OVBaseModel.from_pretrained checks whether the folder is
    OpenVINO IR already; offline (HF_HUB_OFFLINE, as offline starts and the tests run) it treats
    the folder's path as a Hub repo id and reads '<HF cache>/models----<path>/refs/main', so every
    load printed "Could not infer whether the model was already converted" and an [Errno 2]
    line. No flag avoids it (local_files_only is what takes that branch; export=False is
    already passed). We know the answer, so call the loader that check hands over to
    (optimum's OptimizedModel.from_pretrained) with export=False ourselves: nothing else in
    that check applies to a local IR folder."""
    from optimum.intel.openvino.modeling_base import OVBaseModel

    return super(OVBaseModel, pipeline_class).from_pretrained(  # wants a str, not a Path
        str(folder), export=False, local_files_only=True, **options)


def cache_blobs(cache_dir: Path | None) -> dict[str, int]:
    """The compiled blobs OpenVINO has cached, by name, with their modification times: a cold
    compile adds one, or rewrites one whose model file changed since (same path, same name)."""
    if cache_dir is None or not cache_dir.is_dir():
        return {}
    return {path.name: path.stat().st_mtime_ns for path in cache_dir.glob("*.blob")}


def openvino_devices() -> list[str]:
    """The devices OpenVINO finds on this machine, e.g. ['CPU', 'GPU.0', 'NPU']."""
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
