"""INT8 variants of an exported FP16 pipeline: NNCF quantization of the UNet through
optimum-intel's OVQuantizer, calibrated on the UNet inputs of real few-step runs.

optimum-intel's own diffusion calibration calls the pipeline with its default step count (right
for 50-step models, wrong for 1-step SDXL-Turbo), so the UNet inputs are collected here from runs
at the model's own steps and guidance, as the OpenVINO SDXL-Turbo notebook does."""

import ctypes
import functools
import gc
import itertools
import logging
import re
import math
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import openvino as ov
from tqdm import tqdm

from export import split
from pipelines.catalogue import ModelSpec
from export.convert import from_exported
from pipelines.errors import InvalidRequest

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CALIBRATION_PROMPTS = ASSETS / "calibration_prompts.txt"
METHODS = ("full", "hybrid")
CAPTION_COLUMNS = ("caption", "prompt", "text", "Prompt")  # a --dataset's, the first found
DEFAULT_SAMPLES = 200
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
SPLIT_RAM_FRACTION = 24  # a UNet piece's FP16 weights: at most 1/24 of the RAM (default_split)


def load_prompts(dataset: str | None = None, limit: int = DEFAULT_SAMPLES) -> list[str]:
    """Calibration prompts: the shipped file, or a Hub dataset's caption column."""
    if dataset is None:
        lines = CALIBRATION_PROMPTS.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    try:
        import datasets
    except ImportError:
        raise InvalidRequest("--dataset needs the `datasets` package: "
                             "pip install datasets") from None
    rows = datasets.load_dataset(dataset, split="train", streaming=True)
    # A streamed dataset may not know its columns up front: then its first row tells.
    columns = list(rows.column_names or next(iter(rows), {}))
    column = next((c for c in CAPTION_COLUMNS if c in columns), None)
    if column is None:
        raise InvalidRequest(f"{dataset} has no caption column (it has: "
                             f"{', '.join(columns) or 'none'}); --dataset needs one of "
                             f"{', '.join(CAPTION_COLUMNS)}.")
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


def diffusers_scheduler(spec: ModelSpec, config):
    """The catalogue's diffusers scheduler for `spec`, built from an exported folder's scheduler
    config: what calibration runs (serving builds openvino.genai's: compiled.scheduler)."""
    import diffusers

    return getattr(diffusers, spec.scheduler).from_config(config, **dict(spec.scheduler_options))


def _calibration_runs(folder: Path, spec: ModelSpec, prompts: list[str], size: int | None,
                      unet_inputs: list | None = None):
    """Yield the final latents of seeded runs of the FP16 pipeline, one prompt after another,
    as the app runs it; with `unet_inputs`, every UNet call's inputs are appended there."""
    import torch
    from optimum.intel import OVStableDiffusionXLPipeline

    pipeline = from_exported(OVStableDiffusionXLPipeline, folder, compile=True)
    pipeline.set_progress_bar_config(disable=True)
    pipeline.scheduler = diffusers_scheduler(spec, pipeline.scheduler.config)  # as served
    if unet_inputs is not None:
        pipeline.unet.request = _RecordingRequest(pipeline.unet.request, unet_inputs)
    size = int(size or spec.size.default)
    for index in itertools.count():
        latents = pipeline(prompts[index % len(prompts)],
                           num_inference_steps=int(spec.steps.default),
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


def default_split(unet_xml: Path) -> int:
    """How many pieces to calibrate the UNet in: each piece's FP16 weights at most 1/24 of this
    machine's RAM. Measured on a 464 MB (FP16) SDXL-like UNet (benchmarks/split_memory.py), a
    pass grows the process by about 8.5× the FP16 weights it quantizes, plus 0.4 GB (4.5 GB in
    one pass, 0.85 GB in 8 pieces; the full-size UNet's one pass ran out of memory past 22 GB,
    consistent with that). At 1/24
    a piece's pass takes about a third of the RAM. SDXL UNet (5.1 GB): 24 GB → 5 pieces,
    16 GB → 8, 32 GB → 4, 128 GB → 1 (one pass, as the OpenVINO notebook does)."""
    import psutil

    weights = unet_xml.with_suffix(".bin").stat().st_size
    return max(1, math.ceil(weights * SPLIT_RAM_FRACTION / psutil.virtual_memory().total))


def quantize_in_pieces(xml: Path, out_xml: Path, samples: list[dict], config,
                       pieces: int) -> None:
    """nncf.quantize of the UNet IR one piece at a time (export/split.py), with the nncf
    arguments optimum-intel derives from `config` (the same as one pass), then the quantized
    pieces stitched back into one IR. Each piece is calibrated on the tensors the FP16 pieces
    before it hand it (run in f32, as NNCF's own statistics pass runs the whole model), so its
    statistics are those a single pass would collect. The tensors crossing cuts wait on disk."""
    import nncf

    core = ov.Core()
    original = core.read_model(xml)
    assignment = split.plan(original, pieces)
    arguments = config.to_nncf_dict()
    arguments.pop("weight_only", None)
    ignored = arguments.pop("ignored_scope").names

    def build(k: int) -> ov.Model:  # each piece from a fresh read: split.piece changes the model
        return split.piece(core.read_model(xml), assignment, k)

    # Which piece reads each crossing tensor last (then it leaves the disk). Pieces are built
    # again when their turn comes: a read UNet graph costs memory even with its weights mapped.
    last_reader = split.readers([split.input_names(build(k)) for k in range(pieces)])
    with tempfile.TemporaryDirectory(dir=out_xml.parent, prefix=".split-") as work:
        store = split.TensorStore(Path(work))
        for index, sample in enumerate(samples):
            for name in split.input_names(original):
                store.save(index, name, sample[name])
        for k in tqdm(range(pieces), desc="Quantizing UNet pieces", unit="piece"):
            part = build(k)
            if k < pieces - 1:
                split.record(part, store, len(samples))  # what the later pieces read
            names = {op.get_friendly_name() for op in part.get_ops()}
            split.copy_rt_info(original, part)
            quantized = nncf.quantize(
                part, nncf.Dataset(range(len(samples)),
                                   functools.partial(_stored, store, split.input_names(part))),
                ignored_scope=nncf.IgnoredScope(names=[n for n in ignored if n in names]),
                **arguments)
            ov.save_model(quantized, Path(work) / f"piece-{k}.xml")
            del part, quantized
            gc.collect()
            release_freed_memory()
            for name in [name for name, reader in last_reader.items() if reader == k]:
                store.drop(name, len(samples))
        pieces_read = [core.read_model(Path(work) / f"piece-{k}.xml") for k in range(pieces)]
        stitched = split.stitch(pieces_read, split.input_names(original))
        split.copy_rt_info(pieces_read[0], stitched)
        stitched.set_rt_info(nncf.__version__, ["optimum", "nncf_version"])  # as optimum marks it
        ov.save_model(stitched, out_xml)


def _stored(store: split.TensorStore, names: list[str], sample: int) -> dict:
    return {name: store.load(sample, name) for name in names}


def compress_text_encoder_weights(folder: Path) -> None:
    """INT8 weight-only compression of both text encoders, in place (data-free), as
    optimum-intel's OVWeightQuantizationConfig(bits=8) does."""
    import nncf

    for name in ("text_encoder", "text_encoder_2"):
        xml = folder / name / "openvino_model.xml"
        compressed = nncf.compress_weights(ov.Core().read_model(xml))
        ov.save_model(compressed, xml.with_suffix(".tmp.xml"))
        del compressed
        for suffix in (".xml", ".bin"):  # replace only once the new IR is complete
            xml.with_suffix(".tmp" + suffix).replace(xml.with_suffix(suffix))


def quantize(fp16: Path, out: Path, spec: ModelSpec, *, method: str = "full",
             num_samples: int = DEFAULT_SAMPLES, prompts: list[str] | None = None,
             compress_text_encoders: bool = True, smooth_quant: bool = True,
             bias_correction: bool = True, calibration_size: int | None = None,
             pieces: int | None = None) -> dict:
    """Write an INT8 copy of the FP16 folder `fp16` into `out`. Returns the manifest details.
    `pieces`: calibrate the UNet in that many pieces (default: what this machine's RAM needs)."""
    import nncf
    from optimum.intel import (OVConfig, OVPipelineQuantizationConfig, OVQuantizer,
                               OVStableDiffusionXLPipeline, OVWeightQuantizationConfig)

    if method not in METHODS:
        raise InvalidRequest(f"Unknown method {method!r}; choose {' or '.join(METHODS)}")
    if num_samples < 1:
        raise InvalidRequest("The number of calibration samples must be at least 1")
    if pieces is not None and pieces < 1:
        raise InvalidRequest("--split must be at least 1")
    if method == "hybrid" and (pieces or 1) > 1:
        raise InvalidRequest("--split applies to --method full only")
    unet_xml = fp16 / "unet" / "openvino_model.xml"
    pieces = 1 if method == "hybrid" else pieces or default_split(unet_xml)
    nncf.set_log_level(logging.WARNING)  # its INFO lines name every node; progress bars stay
    release_freed_memory()
    start = time.perf_counter()
    samples = collect_unet_inputs(fp16, spec, prompts or load_prompts(), num_samples,
                                  calibration_size)
    collected = time.perf_counter() - start

    config = unet_config(method, ov.Core().read_model(unet_xml), len(samples), smooth_quant,
                         bias_correction)
    if pieces > 1:  # the folder as FP16 but for the UNet, quantized piece by piece
        shutil.copytree(fp16, out, ignore=_fp16_unet_and_manifest)
        quantize_in_pieces(unet_xml, out / "unet" / "openvino_model.xml", samples, config, pieces)
        if compress_text_encoders:
            compress_text_encoder_weights(out)
    else:
        pipeline = from_exported(OVStableDiffusionXLPipeline, fp16, compile=False)
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
            "split": pieces,  # calibrated in this many pieces (1: the whole UNet at once)
            "ignored_scope": config.ignored_scope if method == "full" else "weighted ops (hybrid)",
            "text_encoders": "int8 weights" if compress_text_encoders else "fp16",
            "collect_seconds": round(collected, 1),
            "quantize_seconds": round(time.perf_counter() - start - collected, 1),
            # The process's peak so far, in GiB (Linux reports KiB): what this export command
            # needed in RAM, the FP16 export included when the same command ran it first.
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        }
    }


def _fp16_unet_and_manifest(folder: str, names: list[str]) -> list[str]:
    """What not to copy from the FP16 folder: the UNet IR (quantized instead), the manifest."""
    unet = Path(folder).name == "unet"
    return [n for n in names if n == "manifest.json" or (unet and n.startswith("openvino_model."))]
