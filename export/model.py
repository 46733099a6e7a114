"""A catalogue model or autoencoder exported into the models folder: optimum-intel export,
INT8 quantization or weight compression, the Tiny Autoencoder, each built in a staging folder
and moved into place whole (staged_build)."""

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from export import compress, convert, lora, manifest, quantize, taesd, tiny
from pipelines import catalogue
from pipelines.errors import InvalidRequest
from pipelines.registry import Registry


def export_model(model_id: str, variant: str = "fp16", models_dir: Path | None = None,
                 out: Path | None = None, *, method: str = "full",
                 samples: int = quantize.DEFAULT_SAMPLES, dataset: str | None = None,
                 compress_text_encoders: bool = True, smooth_quant: bool = True,
                 bias_correction: bool = True, calibration_size: int | None = None,
                 split: int | None = None, spec: catalogue.ModelSpec | None = None) -> Path:
    """Export a catalogue model (built in, or the models folder's user model). `int8` quantizes
    the FP16 export (made first if missing); the keyword options apply to it only. `spec`: a
    user model whose catalogue entry is not written yet (export.user.add)."""
    registry = Registry(models_dir)
    spec = spec or registry.catalogue.get(model_id)
    if variant not in spec.variants:
        raise InvalidRequest(f"{spec.name} has no variant {variant!r}; choose "
                             f"{', '.join(spec.variants)}")
    out = Path(out or registry.folder(model_id, variant))
    if variant == "fp16" and spec.base:
        raise InvalidRequest(f"{spec.name} is your own model: `python -m export add` made its "
                             f"FP16 export; to make it again, remove it and add it again.")
    if variant == "fp16":
        for repo in (spec.source, spec.lora):
            if repo not in (None, catalogue.LOCAL_LORA):
                convert.check_hub(repo, out)  # fail at once, before any work
        return staged_build(out, model_id, variant, lambda folder: _export_fp16(spec, folder))
    if variant == "int8-weights":  # of the FP16 export, made first if missing
        if not registry.is_exported(model_id, "fp16"):
            export_model(model_id, "fp16", registry.models_dir, spec=spec)
        fp16 = registry.folder(model_id, "fp16")
        return staged_build(out, model_id, variant,
                            lambda folder: _compress_weights(spec, fp16, folder))

    if method not in quantize.METHODS:  # before any long step
        raise InvalidRequest(f"Unknown method {method!r}; choose {' or '.join(quantize.METHODS)}")
    if split is not None and (split < 1 or method == "hybrid" and split > 1):
        raise InvalidRequest("--split must be at least 1, and applies to --method full only")
    if dataset is not None:
        convert.check_hub(dataset, out, advice="Leave out --dataset to calibrate on the prompts "
                                               "in assets/calibration_prompts.txt.")
    fp16 = registry.folder(model_id, "fp16")
    if not registry.is_exported(model_id, "fp16"):
        export_model(model_id, "fp16", registry.models_dir, spec=spec)

    def build(staged: Path) -> dict:
        details = quantize.quantize(fp16, staged, spec, method=method, num_samples=samples,
                                    prompts=quantize.load_prompts(dataset, samples),
                                    compress_text_encoders=compress_text_encoders,
                                    smooth_quant=smooth_quant,
                                    bias_correction=bias_correction,
                                    calibration_size=calibration_size, pieces=split)
        _copy_missing(fp16, staged)
        return dict(source=f"{spec.source or 'tiny stand-in'}, quantized from {fp16}",
                    method=f"NNCF INT8 ({method}) of the UNet", **details)

    return staged_build(out, model_id, variant, build)


def export_autoencoder(autoencoder_id: str, models_dir: Path | None = None,
                       out: Path | None = None, variant: str = "fp16",
                       samples: int = quantize.DEFAULT_SAMPLES) -> Path:
    """Export a catalogue Tiny Autoencoder (TAESD) into <models dir>/<id>/, with a manifest;
    `int8` quantizes that FP16 export (made first if missing) into <models dir>/<id>-int8/."""
    spec = catalogue.AUTOENCODERS[autoencoder_id]
    if variant not in catalogue.AUTOENCODER_VARIANTS:
        raise InvalidRequest(f"{spec.name} has no variant {variant!r}; choose "
                             f"{', '.join(catalogue.AUTOENCODER_VARIANTS)}")
    registry = Registry(models_dir)
    out = Path(out or registry.autoencoder_folder(autoencoder_id, variant))
    if variant == "int8":
        return _quantized_autoencoder(spec, registry, out, samples)
    if spec.source is not None:
        convert.check_hub(spec.source, out)

    def build(staged: Path) -> dict:
        taesd.export_autoencoder(taesd.load_autoencoder(spec.source), staged)
        return dict(source=spec.source or "built locally by export/taesd.py (random weights)",
                    method="ov.convert_model of AutoencoderTiny's encoder and decoder, "
                           "fp16 weights")

    return staged_build(out, autoencoder_id, "fp16", build)


def _quantized_autoencoder(spec: catalogue.AutoencoderSpec, registry: Registry, out: Path,
                           samples: int) -> Path:
    """INT8 TAESD calibrated on real inputs: the final latents of FP16 runs of a model that
    decodes with this autoencoder (the first one exported here), and for the encoder the example
    images plus those latents decoded by the FP16 TAESD."""
    if samples < 1:
        raise InvalidRequest("The number of calibration samples must be at least 1")
    users = [m for m in catalogue.MODELS.values() if m.fast_decoder == spec.id]
    model = next((m for m in users if registry.is_exported(m.id, "fp16")), None)
    if model is None:
        raise InvalidRequest(f"Calibrating {spec.name} needs the latents of a model that "
                             f"decodes with it; export one first: "
                             f"`{catalogue.export_command(users[0].id)}`.")
    fp16 = registry.autoencoder_folder(spec.id)
    if not registry.has_autoencoder(spec.id):
        export_autoencoder(spec.id, registry.models_dir)

    def build(staged: Path) -> dict:
        latents = quantize.collect_latents(registry.folder(model.id, "fp16"), model,
                                           quantize.load_prompts(), samples)
        images = (taesd.example_images(quantize.ASSETS / "examples", int(model.size.default))
                  + taesd.decode(fp16, latents))
        details = taesd.quantize_autoencoder(fp16, staged, latents, images)
        details["quantization"]["calibration_model"] = f"{model.id} (fp16)"
        return dict(source=f"{spec.source or 'tiny stand-in'}, quantized from {fp16}",
                    method="NNCF INT8 (weights and activations) of both TAESD halves", **details)

    return staged_build(out, spec.id, "int8", build)


def _export_fp16(spec: catalogue.ModelSpec, staged: Path) -> dict:
    work = staged.parent
    vega = spec.lora is not None  # the stand-in for a LoRA model is the Vega-like one
    source = spec.source or tiny.save_source(work / "source", vega=vega)
    origin = spec.source or "built locally by export/tiny.py (random weights)"
    method = "optimum-intel export, fp16 weights"
    if spec.lora:
        adapter = tiny.save_lora(work) if spec.lora == catalogue.LOCAL_LORA else spec.lora
        source = lora.fuse(source, adapter, work / "fused")
        origin += (" with LoRA " + (spec.lora if spec.lora != catalogue.LOCAL_LORA
                                    else "made by export/tiny.py (peft, random weights)"))
        method = "diffusers load_lora_weights + fuse_lora, then " + method
    convert.export_pipeline(source, staged)
    return dict(source=origin, method=method, lora=spec.lora)


def _compress_weights(spec: catalogue.ModelSpec, fp16: Path, staged: Path) -> dict:
    details = compress.compress_weights(fp16, staged)
    _copy_missing(fp16, staged)
    return dict(source=f"{spec.source or 'tiny stand-in'}, compressed from {fp16}",
                method="INT8 weight compression of every part via optimum-intel", **details)


def staged_build(out: Path, model_id: str, variant: str, build: Callable[[Path], dict]) -> Path:
    """Build into a temporary folder next to `out`, write the manifest, then move it in: a failed
    export never leaves a half-written folder that the registry would take for a model."""
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{variant}-") as work:
        staged = Path(work) / "ov"
        with convert.gc_frozen():
            details = build(staged)
        manifest.write(staged, model_id=model_id, variant=variant,
                       seconds=time.perf_counter() - start, **details)
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return out


def _copy_missing(reference: Path, staged: Path) -> None:
    """optimum-intel's quantizer saves the pipeline without the OpenVINO tokenizers that
    openvino.genai needs; take them from the FP16 folder."""
    for path in reference.rglob("*"):
        target = staged / path.relative_to(reference)
        if path.is_file() and not target.exists() and path.name != "manifest.json":
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
