"""INT8 variants of an exported FP16 pipeline: NNCF quantization of the UNet through
optimum-intel's OVQuantizer, calibrated on the UNet inputs of real few-step runs.

optimum-intel's own diffusion calibration calls the pipeline with its default step count (right
for 50-step models, wrong for 1-step SDXL-Turbo), so the UNet inputs are collected here from runs
at the model's own steps and guidance, as the OpenVINO SDXL-Turbo notebook does."""

import ctypes
import gc
import itertools
import logging
import re
import resource
import time
from pathlib import Path

import numpy as np
import openvino as ov
from tqdm import tqdm

from pipelines.catalogue import ModelSpec

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CALIBRATION_PROMPTS = ASSETS / "calibration_prompts.txt"
METHODS = ("full", "hybrid")
DEFAULT_SAMPLES = 200
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def load_prompts(dataset: str | None = None, limit: int = DEFAULT_SAMPLES) -> list[str]:
    """Calibration prompts: the shipped file, or a Hub dataset's caption column."""
    if dataset is None:
        lines = CALIBRATION_PROMPTS.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    try:
        import datasets
    except ImportError:
        raise ValueError("--dataset needs the `datasets` package: pip install datasets") from None
    rows = datasets.load_dataset(dataset, split="train", streaming=True)
    column = next(c for c in ("caption", "prompt", "text", "Prompt") if c in rows.column_names)
    return [row[column] for row, _ in zip(rows, range(limit))]


class _RecordingRequest:
    """Stands in for a compiled UNet and keeps a copy of every input it is called with.
    Written by hand: optimum-intel has no hook to observe a submodel's inputs."""

    def __init__(self, compiled, samples: list):
        self.compiled, self.samples = compiled, samples

    def __call__(self, inputs, *args, **kwargs):
        self.samples.append({name: np.array(value) for name, value in inputs.items()})
        return self.compiled(inputs, *args, **kwargs)


def collect_unet_inputs(folder: Path, spec: ModelSpec, prompts: list[str], num_samples: int,
                        size: int | None = None) -> list[dict]:
    """Run the FP16 pipeline as the app does (the model's default steps and guidance; its
    default size unless `size` is given) and record the UNet inputs, one seeded run per prompt,
    until num_samples are collected."""
    samples: list[dict] = []
    runs = _calibration_runs(folder, spec, prompts, size, samples)
    with tqdm(total=num_samples, desc="Collecting UNet inputs", unit="sample") as bar:
        while len(samples) < num_samples:
            next(runs)
            bar.update(min(len(samples), num_samples) - bar.n)
    runs.close()  # frees the compiled FP16 pipeline: gigabytes that quantization needs
    gc.collect()
    return samples[:num_samples]


def collect_latents(folder: Path, spec: ModelSpec, prompts: list[str], num_samples: int,
                    size: int | None = None) -> list[np.ndarray]:
    """The final latents of num_samples seeded runs of the FP16 pipeline: what reaches the
    decoder (TAESD's scaling factor is 1.0, so the pipeline hands them over unscaled)."""
    runs = _calibration_runs(folder, spec, prompts, size)
    latents = list(tqdm(itertools.islice(runs, num_samples), total=num_samples,
                        desc="Collecting latents", unit="sample"))
    runs.close()  # frees the compiled pipeline
    return latents


def _calibration_runs(folder: Path, spec: ModelSpec, prompts: list[str], size: int | None,
                      unet_inputs: list | None = None):
    """Yield the final latents of seeded runs of the FP16 pipeline, one prompt after another,
    as the app runs it; with `unet_inputs`, every UNet call's inputs are appended there."""
    import torch
    from optimum.intel import OVStableDiffusionXLPipeline

    pipeline = OVStableDiffusionXLPipeline.from_pretrained(str(folder), export=False, compile=True)
    pipeline.set_progress_bar_config(disable=True)
    if unet_inputs is not None:
        pipeline.unet.request = _RecordingRequest(pipeline.unet.request, unet_inputs)
    size = int(size or spec.size.default)
    for index in itertools.count():
        latents = pipeline(prompts[index % len(prompts)], num_inference_steps=int(spec.steps.default),
                           guidance_scale=spec.guidance.default, height=size, width=size,
                           generator=torch.Generator().manual_seed(index), output_type="latent")
        yield np.array(latents.images, dtype=np.float32)


def ignored_scope(unet: ov.Model) -> list[str]:
    """The notebook's ignored scope, found in this graph: conv_in, conv_out and the shortcut conv
    of the last up-block's last resnet (quantizing those costs the most image quality)."""
    convolutions = [op.get_friendly_name() for op in unet.get_ops()
                    if op.get_type_name() == "Convolution"]
    shortcut = re.compile(r"up_blocks\.(\d+)\.resnets\.(\d+)\.conv_shortcut/")
    shortcuts = [(tuple(map(int, m.groups())), name)
                 for name in convolutions if (m := shortcut.search(name))]
    names = [name for name in convolutions if re.search(r"\.conv_(in|out)/", name)]
    if shortcuts:
        names.append(max(shortcuts)[1])
    return names


def release_freed_memory() -> None:
    """Make glibc hand large freed blocks back to the OS. NNCF passes weights around as NumPy
    arrays of 1-30 MB; glibc's adaptive threshold soon serves those from the heap, and what is
    freed stays in the process. On the full-size UNet this leaves 4.9 GB in use after
    SmoothQuant instead of 12.8 GB (measured by benchmarks/int8_unet.py), room the next
    statistics pass needs. Written by hand: nothing in Python exposes mallopt."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)  # blocks ≥ 1 MiB: mmap'ed, unmapped when freed
    libc.malloc_trim(0)


def unet_config(method: str, unet: ov.Model, num_samples: int, smooth_quant: bool = True,
                bias_correction: bool = True):
    import nncf
    from optimum.intel import OVQuantizationConfig, OVWeightQuantizationConfig

    if method == "hybrid":  # INT8 weights for MatMuls and embeddings, INT8 activations elsewhere
        return OVWeightQuantizationConfig(bits=8, quant_method="hybrid", num_samples=num_samples)
    # Both refinements cost memory on the full-size UNet (benchmarks/int8_unet.py measures it):
    # SmoothQuant rewrites every MatMul weight, and fast bias correction keeps every biased
    # layer's input for each sample.
    return OVQuantizationConfig(
        model_type="transformer", num_samples=num_samples,
        ignored_scope={"names": ignored_scope(unet)},
        smooth_quant_alpha=None if smooth_quant else -1,
        advanced_parameters=nncf.AdvancedQuantizationParameters(
            disable_bias_correction=not bias_correction))


def quantize(fp16: Path, out: Path, spec: ModelSpec, *, method: str = "full",
             num_samples: int = DEFAULT_SAMPLES, prompts: list[str] | None = None,
             compress_text_encoders: bool = False, smooth_quant: bool = True,
             bias_correction: bool = True, calibration_size: int | None = None) -> dict:
    """Write an INT8 copy of the FP16 folder `fp16` into `out`. Returns the manifest details."""
    import nncf
    from optimum.intel import (OVConfig, OVPipelineQuantizationConfig, OVQuantizer,
                               OVStableDiffusionXLPipeline, OVWeightQuantizationConfig)

    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose {' or '.join(METHODS)}")
    if num_samples < 1:
        raise ValueError("The number of calibration samples must be at least 1")
    nncf.set_log_level(logging.WARNING)  # its INFO lines name every node; progress bars stay
    release_freed_memory()
    start = time.perf_counter()
    samples = collect_unet_inputs(fp16, spec, prompts or load_prompts(), num_samples,
                                  calibration_size)
    collected = time.perf_counter() - start

    pipeline = OVStableDiffusionXLPipeline.from_pretrained(str(fp16), export=False, compile=False)
    config = unet_config(method, pipeline.unet.model, len(samples), smooth_quant,
                         bias_correction)
    configs = {"unet": config}
    if compress_text_encoders:
        configs.update(text_encoder=OVWeightQuantizationConfig(bits=8),
                       text_encoder_2=OVWeightQuantizationConfig(bits=8))
    OVQuantizer(pipeline).quantize(
        calibration_dataset={"unet": nncf.Dataset(samples)},
        ov_config=OVConfig(quantization_config=OVPipelineQuantizationConfig(configs)),
        save_directory=out)
    return {
        "quantization": {
            "method": method,
            "samples": len(samples),
            "steps_per_sample_run": int(spec.steps.default),
            "calibration_size": int(calibration_size or spec.size.default),
            "model_type": "transformer" if method == "full" else None,
            "smooth_quant": ("NNCF default for transformer models"
                             if method == "full" and smooth_quant else "off"),
            "bias_correction": "fast" if method == "full" and bias_correction else "off",
            "ignored_scope": config.ignored_scope if method == "full" else "weighted ops (hybrid)",
            "text_encoders": "int8 weights" if compress_text_encoders else "fp16",
            "collect_seconds": round(collected, 1),
            "quantize_seconds": round(time.perf_counter() - start - collected, 1),
            # The process's peak so far (Linux reports KiB): what the export needed in RAM.
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        }
    }
