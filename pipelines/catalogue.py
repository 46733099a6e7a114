"""The one table of models the app serves and their defaults. The UI and CLI read it; nothing
else repeats these facts."""

from dataclasses import dataclass, field


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
    family: str  # turbo | lcm | sdxl-base | tiny
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

    @property
    def uses_guidance(self) -> bool:
        return self.guidance.max > 1


@dataclass(frozen=True)
class AutoencoderSpec:
    """A Tiny Autoencoder that replaces a model's VAE (both halves) for fast decoding."""
    id: str
    name: str
    source: str | None  # Hub repo of the diffusers AutoencoderTiny; None: built locally
    description: str


# fp16 is the export; int8 (NNCF, calibrated on a model's latents) lives beside it in <id>-int8/.
AUTOENCODER_VARIANTS = ("fp16", "int8")

AUTOENCODERS: dict[str, AutoencoderSpec] = {
    spec.id: spec
    for spec in (
        AutoencoderSpec(
            id="taesdxl", name="TAESD-XL", source="madebyollin/taesdxl",
            description="Tiny Autoencoder for SDXL latents: about 20× faster to decode than the "
                        "full VAE, with slightly softer fine detail."),
        AutoencoderSpec(
            id="tiny-taesd", name="Tiny TAESD stand-in", source=None,
            description="Random-weight AutoencoderTiny with small channels, for tests."),
    )
}

# SDXL-Turbo: guidance 0, trailing timesteps, 512², 1-4 steps (its model card).
_TURBO = dict(
    family="turbo",
    variants=("fp16", "int8"),
    steps=Range(1, 4, 1),
    img2img_steps=Range(1, 4, 2),
    strength=Range(0.05, 1.0, 0.5, 0.05),
    guidance=Range(0.0, 0.0, 0.0, 0.1),
    size=Range(256, 1024, 512, 64),
    fast_decoder_default=True,  # at one step the full VAE decoder costs more than the UNet
)

MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="sdxl-turbo", name="SDXL-Turbo", source="stabilityai/sdxl-turbo",
            description="Adversarial diffusion distillation of SDXL: good images in 1-4 steps at 512².",
            fast_decoder="taesdxl", **_TURBO,
            # FastSD CPU's export (rupeshs): INT8 weights, 3.6 GB UNet, not turbo-studio's NNCF
            # calibration. rupeshs/sdxl-turbo-openvino also exists but holds FP32 weights
            # (10.3 GB UNet), which is not this catalogue's fp16, so fp16 is left to export.
            hub_exports={"int8": "rupeshs/sdxl-turbo-openvino-int8"},
        ),
        ModelSpec(
            id="tiny", name="Tiny stand-in", source=None, stand_in=True,
            description="Random weights with the SDXL architecture, built offline for tests and "
                        "demos: its images are noise.",
            fast_decoder="tiny-taesd", **{**_TURBO, "family": "tiny"},
        ),
    )
}

DEFAULT_MODEL = "sdxl-turbo"
STAND_IN = "tiny"


def get(model_id: str) -> ModelSpec:
    try:
        return MODELS[model_id]
    except KeyError:
        raise KeyError(f"Unknown model {model_id!r}; known: {', '.join(MODELS)}") from None


def hub_repos() -> list[str]:
    """Every pre-exported Hub repo the catalogue names (for a Space's preload_from_hub)."""
    return [repo for spec in MODELS.values() for repo in spec.hub_exports.values()]


def export_command(model_id: str, variant: str = "fp16") -> str:
    """The command a user runs to make a model (or an autoencoder) available."""
    suffix = "" if variant == "fp16" else f" --variant {variant}"
    return f"python -m export {model_id}{suffix}"
