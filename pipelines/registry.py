"""Resolves a catalogue model + variant to an exported folder and loads it lazily, once.

Text-to-image and image-to-image share one set of compiled OpenVINO models (no second copy in
memory) and one lock, because an OpenVINO infer request is not thread-safe and a diffusers
scheduler carries state between steps."""

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import catalogue
from pipelines.catalogue import ModelSpec
from pipelines.generate import StageClock

SUBMODELS = ("unet", "vae_decoder", "vae_encoder", "text_encoder", "text_encoder_2")


class ModelNotAvailable(RuntimeError):
    """The model is in the catalogue but not exported here; the message says how to export it."""


def default_models_dir() -> Path:
    return Path(os.environ.get("TURBO_MODELS_DIR", Path(__file__).resolve().parent.parent / "models"))


@dataclass
class Loaded:
    spec: ModelSpec
    variant: str
    folder: Path
    text2image: object  # OVStableDiffusionXLPipeline
    image2image: object  # OVStableDiffusionXLImg2ImgPipeline sharing text2image's compiled models
    load_seconds: float
    clock: StageClock
    lock: threading.Lock = field(default_factory=threading.Lock)


class Registry:
    def __init__(self, models_dir: Path | None = None, device: str = "CPU"):
        self.models_dir = Path(models_dir or default_models_dir())
        self.device = device
        self._loaded: dict[tuple[str, str], Loaded] = {}
        self._loading = threading.Lock()  # one load at a time: loads are memory-heavy

    def folder(self, model_id: str, variant: str) -> Path:
        return self.models_dir / model_id / variant

    def is_exported(self, model_id: str, variant: str) -> bool:
        return (self.folder(model_id, variant) / "model_index.json").is_file()

    def exported(self) -> list[tuple[str, str]]:
        """(model id, variant) pairs of the catalogue that have an exported folder here."""
        return [(spec.id, variant) for spec in catalogue.MODELS.values()
                for variant in spec.variants if self.is_exported(spec.id, variant)]

    def manifest(self, model_id: str, variant: str) -> dict:
        path = self.folder(model_id, variant) / "manifest.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def get(self, model_id: str, variant: str) -> Loaded:
        """The loaded model, loading it on first use. Only catalogue models can be loaded."""
        spec = catalogue.get(model_id)
        if variant not in spec.variants:
            raise KeyError(f"{spec.name} has no variant {variant!r}")
        key = (model_id, variant)
        with self._loading:
            if key not in self._loaded:
                self._loaded[key] = self._load(spec, variant)
            return self._loaded[key]

    def _load(self, spec: ModelSpec, variant: str) -> Loaded:
        folder = self.folder(spec.id, variant)
        if not self.is_exported(spec.id, variant):
            raise ModelNotAvailable(
                f"{spec.name} ({variant}) is not exported in {self.models_dir}. "
                f"Run `{catalogue.export_command(spec.id, variant)}` (or set TURBO_MODELS_DIR).")
        from optimum.intel import OVStableDiffusionXLImg2ImgPipeline, OVStableDiffusionXLPipeline

        start = time.perf_counter()
        text2image = OVStableDiffusionXLPipeline.from_pretrained(
            folder, export=False, device=self.device, compile=True)
        # The image-to-image pipeline takes the already compiled models (compile_only), so both
        # tasks share one copy of the weights; optimum-intel has no from_pipe for this.
        compiled = {name: getattr(text2image, name).request for name in SUBMODELS}
        image2image = OVStableDiffusionXLImg2ImgPipeline(
            scheduler=text2image.scheduler, tokenizer=text2image.tokenizer,
            tokenizer_2=text2image.tokenizer_2, model_save_dir=folder, device=self.device,
            compile_only=True, **compiled)
        clock = StageClock()
        for pipeline in (text2image, image2image):
            pipeline.set_progress_bar_config(disable=True)
            clock.instrument(pipeline)
        return Loaded(spec=spec, variant=variant, folder=folder, text2image=text2image,
                      image2image=image2image, load_seconds=time.perf_counter() - start,
                      clock=clock)
