"""INT8 weight compression of an exported pipeline (every part), as the OpenVINO SDXL notebook
does: data-free, so it needs no calibration runs and little memory, and activations stay in
floating point. optimum-intel applies NNCF's compress_weights to each submodel."""

from pathlib import Path

from export.convert import from_exported


def compress_weights(fp16: Path, out: Path) -> dict:
    """Write an INT8-weights copy of the FP16 folder `fp16` into `out`. Returns the manifest
    details."""
    from optimum.intel import (OVConfig, OVQuantizer, OVStableDiffusionXLPipeline,
                               OVWeightQuantizationConfig)

    pipeline = from_exported(OVStableDiffusionXLPipeline, fp16, compile=False)
    OVQuantizer(pipeline).quantize(
        ov_config=OVConfig(quantization_config=OVWeightQuantizationConfig(bits=8)),
        save_directory=out)
    return {"quantization": {"method": "int8 weight compression (nncf.compress_weights)",
                             "parts": "all: UNet, text encoders, VAE"}}
