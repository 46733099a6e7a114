"""The one table of models the app serves and their defaults. The UI and CLI read it; nothing
else repeats these facts.

MODELS holds the built-in models; a models folder may add the user's own (`python -m export add`)
in <models dir>/catalogue.json. `user_models.load(models_dir)` gives a frozen Catalogue of both,
which the registry holds and every surface that serves user models reads; `get()` knows only
built-ins."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from collections.abc import Mapping


@dataclass(frozen=True)
class Range:
    min: float
    max: float
    default: float
    step: float = 1


@dataclass(frozen=True)
class ModelSpec:
    id: str
    name: str
    source: str | None  # Hub repo exported from; None for a stand-in built locally
    variants: tuple[str, ...]
    steps: Range  # text-to-image
    img2img_steps: Range
    strength: Range
    guidance: Range
    size: Range  # width and height, in pixels, multiples of size.step
    description: str
    stand_in: bool = False
    fast_decoder: str | None = None  # an AUTOENCODERS id: TAESD for this model's latents
    fast_decoder_default: bool = False  # use it unless the user turns it off
    # variant -> Hub repo of an already exported OpenVINO folder (optimum-intel layout) that the
    # registry downloads instead of exporting; only repos checked to exist.
    hub_exports: dict[str, str] = field(default_factory=dict)
    # The scheduler the loaded pipeline runs with, by its diffusers class name (served by
    # openvino.genai's own: pipelines.compiled.SCHEDULERS), made from the exported folder's
    # scheduler config with these overrides: the catalogue, not the folder, decides.
    scheduler: str = "EulerAncestralDiscreteScheduler"
    scheduler_options: tuple[tuple[str, object], ...] = ()
    # A LoRA fused into the UNet before export: a Hub repo, or LOCAL_LORA for a stand-in (a
    # tiny LoRA made by export/tiny.py).
    lora: str | None = None
    stands_in_for: str | None = None  # a stand-in: the real model whose settings it mirrors
    # The UNet takes the guidance scale as an embedding (time_cond_proj_dim, a timestep_cond
    # input), as LCM-distilled UNets do; an LCM-LoRA fused into SDXL (VegaRT) adds none.
    guidance_embedding: bool = False
    # A user's model (catalogue.json): the built-in model whose settings it takes, and the
    # `python -m export add` line that makes it (its entry's fields as flags).
    base: str | None = None
    add_command: str | None = None

    def guided(self, guidance: float) -> bool:
        """Whether classifier-free guidance runs at this guidance scale (openvino.genai's and
        diffusers' do_classifier_free_guidance): then the UNet runs on a doubled batch and the
        negative prompt applies."""
        return guidance > 1 and not self.guidance_embedding

    @property
    def uses_guidance(self) -> bool:
        """Some guidance scale in the model's range is guided (the UI shows a negative prompt)."""
        return self.guided(self.guidance.max)


@dataclass(frozen=True)
class AutoencoderSpec:
    """A Tiny Autoencoder that replaces a model's VAE (both halves) for fast decoding."""
    id: str
    name: str
    source: str | None  # Hub repo of the diffusers AutoencoderTiny; None: built locally
    description: str
    # Hub repo of it already converted to OpenVINO (vae_decoder/ + vae_encoder/), served from
    # the Hugging Face cache where it is not exported here; only a repo checked to exist.
    hub_export: str | None = None


# fp16 is the export; int8 (NNCF, calibrated on a model's latents) lives beside it in <id>-int8/.
AUTOENCODER_VARIANTS = ("fp16", "int8")

AUTOENCODERS: dict[str, AutoencoderSpec] = {
    spec.id: spec
    for spec in (
        AutoencoderSpec(
            id="taesdxl", name="TAESD-XL", source="madebyollin/taesdxl",
            description="Tiny Autoencoder for SDXL latents: about 20× faster to decode than the "
                        "full VAE, with slightly softer fine detail.",
            hub_export="rupeshs/taesdxl-openvino"),
        AutoencoderSpec(
            id="tiny-taesd", name="Tiny TAESD stand-in", source=None,
            description="Random-weight AutoencoderTiny with small channels, for tests."),
    )
}

LOCAL_LORA = "local"

# What each variant is, for the UI and the CLI.
VARIANTS = {
    "fp16": "FP16 weights, as exported by optimum-intel",
    "int8": "NNCF INT8 weights and activations in the UNet: smaller and faster on CPUs with "
            "VNNI/AMX",
    "int8-weights": "INT8 weight compression of every part (data-free, as the OpenVINO SDXL "
                    "notebook): half the memory, activations stay in floating point",
}

# SDXL-Turbo: guidance 0, trailing timesteps, 512², 1-4 steps (its model card).
_TURBO = dict(
    variants=("fp16", "int8"),
    steps=Range(1, 4, 1),
    img2img_steps=Range(1, 4, 2),
    strength=Range(0.05, 1.0, 0.5, 0.05),
    guidance=Range(0.0, 0.0, 0.0, 0.1),
    size=Range(256, 1024, 512, 64),
    fast_decoder_default=True,  # at one step the full VAE decoder costs more than the UNet
    scheduler="EulerAncestralDiscreteScheduler",
    scheduler_options=(("timestep_spacing", "trailing"),),
)

# Segmind-Vega (a distilled SDXL, 1024²) with the LCM-LoRA Segmind-VegaRT fused in: LCM
# sampling in 2-8 steps at guidance up to 2 (the VegaRT model card: 4 steps, guidance 1).
_VEGART = dict(
    variants=("fp16", "int8"),
    steps=Range(2, 8, 4),
    img2img_steps=Range(2, 8, 4),
    strength=Range(0.05, 1.0, 0.5, 0.05),
    guidance=Range(0.0, 2.0, 1.0, 0.1),
    size=Range(512, 1024, 1024, 64),
    fast_decoder_default=True,  # at 4 steps the full VAE at 1024² costs about as much as the UNet
    scheduler="LCMScheduler",
)

# SDXL base 1.0: 1024², classifier-free guidance with a negative prompt, EulerDiscrete (its
# model card and the OpenVINO SDXL notebook).
_BASE = dict(
    variants=("fp16", "int8-weights"),
    steps=Range(20, 50, 25),
    img2img_steps=Range(20, 50, 25),
    strength=Range(0.05, 1.0, 0.5, 0.05),
    guidance=Range(1.0, 15.0, 7.0, 0.5),
    size=Range(512, 1024, 1024, 64),
    scheduler="EulerDiscreteScheduler",
)

MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="sdxl-turbo", name="SDXL-Turbo", source="stabilityai/sdxl-turbo",
            description="Adversarial diffusion distillation of SDXL: good images in 1-4 steps "
                        "at 512².",
            fast_decoder="taesdxl", **_TURBO,
            # FastSD CPU's export (rupeshs): optimum's hybrid quantization, INT8 weights and
            # activations in the UNet (its IR's quantizers say so: ir_precision), 4.5 GB in
            # all. rupeshs/sdxl-turbo-openvino also exists but holds FP32 weights (10.3 GB
            # UNet), which is not this catalogue's fp16, so fp16 is left to export.
            hub_exports={"int8": "rupeshs/sdxl-turbo-openvino-int8"},
        ),
        ModelSpec(
            id="tiny", name="Tiny stand-in", source=None, stand_in=True,
            description="Random weights with the SDXL architecture, built offline for tests and "
                        "demos: its images are noise.",
            fast_decoder="tiny-taesd", stands_in_for="sdxl-turbo", **_TURBO,
        ),
        ModelSpec(
            id="segmind-vegart", name="Segmind-VegaRT", source="segmind/Segmind-Vega",
            lora="segmind/Segmind-VegaRT",
            description="Segmind-Vega (SDXL distilled to 745M UNet parameters) with the LCM-LoRA "
                        "Segmind-VegaRT fused in: 1024² images in 2-8 steps.",
            fast_decoder="taesdxl", **_VEGART,
        ),
        ModelSpec(
            id="tiny-vega", name="Tiny Vega stand-in", source=None, stand_in=True,
            lora=LOCAL_LORA, stands_in_for="segmind-vegart",
            description="Random weights with a smaller UNet than the tiny SDXL stand-in and a "
                        "tiny LoRA fused in, for tests and demos: its images are noise.",
            fast_decoder="tiny-taesd", **_VEGART,
        ),
        ModelSpec(
            id="sdxl-base", name="SDXL base 1.0", source="stabilityai/stable-diffusion-xl-base-1.0",
            description="Stable Diffusion XL base 1.0: 1024² images in 20-50 steps with "
                        "classifier-free guidance and a negative prompt.",
            fast_decoder="taesdxl", **_BASE,
            # OpenVINO's own export: INT8 weight compression (nncf.compress_weights), with
            # OpenVINO tokenizers.
            hub_exports={"int8-weights": "OpenVINO/stable-diffusion-xl-base-1.0-int8-ov"},
        ),
        ModelSpec(
            id="tiny-base", name="Tiny SDXL-base stand-in", source=None, stand_in=True,
            stands_in_for="sdxl-base",
            description="The tiny SDXL stand-in with SDXL base's settings (steps, guidance, "
                        "scheduler), for tests and demos: its images are noise.",
            fast_decoder="tiny-taesd", **_BASE,
        ),
    )
}

DEFAULT_MODEL = "sdxl-turbo"


def get(model_id: str) -> ModelSpec:
    try:
        return MODELS[model_id]
    except KeyError:
        raise KeyError(f"Unknown model {model_id!r}; known: {', '.join(MODELS)}") from None


def hub_repos() -> list[str]:
    """Every pre-exported Hub repo the catalogue names, models' and fast decoders' (for a
    Space's preload_from_hub)."""
    return ([repo for spec in MODELS.values() for repo in spec.hub_exports.values()]
            + [ae.hub_export for ae in AUTOENCODERS.values() if ae.hub_export])


def stand_in_for(model_id: str) -> str:
    """The stand-in that mirrors a real model's settings (served when it is not exported)."""
    return next(spec.id for spec in MODELS.values() if spec.stands_in_for == model_id)


def export_command(model_id: str, variant: str = "fp16", spec: "ModelSpec | None" = None) -> str:
    """The command a user runs to make a model (or an autoencoder) available. A user's model
    (`spec` with a base) is made by `export add`, which `python -m export NAME` refuses for
    fp16, and `add` refuses while the entry exists: remove it, then add it again."""
    if spec is not None and spec.base and variant == "fp16":
        return f"python -m export remove {spec.id} && {spec.add_command}"
    suffix = "" if variant == "fp16" else f" --variant {variant}"
    return f"python -m export {model_id}{suffix}"


@dataclass(frozen=True)
class Catalogue:
    """The built-in models and the models folder's user models, read once (frozen: a model
    added later is served after a restart). `problems` says why the user file, or an entry of
    it, was left out."""
    models: Mapping[str, ModelSpec]
    problems: tuple[str, ...] = ()
    file: Path | None = None

    def get(self, model_id: str) -> ModelSpec:
        try:
            return self.models[model_id]
        except KeyError:
            raise KeyError(f"Unknown model {model_id!r}; known: {', '.join(self.models)}") from None

    def __contains__(self, model_id: object) -> bool:
        return model_id in self.models

    @property
    def user_ids(self) -> list[str]:
        return [spec.id for spec in self.models.values() if spec.base]

    def entries(self) -> dict:
        """The user file's entries as stored (empty when there is no file)."""
        if self.file is None or not self.file.is_file():
            return {}
        return json.loads(self.file.read_text(encoding="utf-8")).get("models", {})

    def stand_in_for(self, model_id: str) -> str:
        return next(spec.id for spec in self.models.values() if spec.stands_in_for == model_id)


BUILT_IN = Catalogue(MappingProxyType(MODELS))
