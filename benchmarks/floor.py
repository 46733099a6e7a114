"""The compute floor: how fast a configuration could be if every stage ran at this machine's peak.

Peaks are measured here, in the same run, with one large MatMul compiled by OpenVINO: in bf16,
and in INT8 (FakeQuantize on both operands, which the CPU plugin runs as u8×i8, VNNI/AMX).
FLOPs per forward come from the reference architectures (torch.utils.flop_counter on the real
configs, 2 FLOPs per multiply-add); the TAESD encoder's is counted here the same way."""

import json
import time
from pathlib import Path

import numpy as np

ARCHITECTURES = Path(__file__).resolve().parent / "sdxl_architectures.json"
MATMUL = 4096  # M = K = N: large enough to reach the peak, 137 GFLOP per call


def matmul_peak(precision: str, repeats: int = 8) -> float:
    """FLOP/s of the best of `repeats` MatMuls, "bf16" or "int8"."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([MATMUL, MATMUL], np.float32, name="x")
    weights = ops.constant(rng.standard_normal((MATMUL, MATMUL)).astype(np.float32))
    a, b = x, weights
    if precision == "int8":
        def fq(node, low, high):
            return ops.fake_quantize(node, ops.constant(np.float32(low)),
                                     ops.constant(np.float32(high)), ops.constant(np.float32(low)),
                                     ops.constant(np.float32(high)), 256)
        a, b = fq(x, 0.0, 4.0), fq(weights, -4.0, 4.0)
    model = ov.Model([ops.matmul(a, b, False, False)], [x])
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "bf16",
                                                     "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    data = np.abs(rng.standard_normal((MATMUL, MATMUL))).astype(np.float32)
    request.infer({0: data})
    best = min(_seconds(lambda: request.infer({0: data})) for _ in range(repeats))
    return 2 * MATMUL**3 / best


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def stage_tflops() -> dict[str, float]:
    """TFLOPs per forward at 512² of each full-size stage."""
    reference = json.loads(ARCHITECTURES.read_text())["flops_per_forward_tflops"]
    return {"UNet": reference["unet@512px"], "decoder": reference["vae_decoder@512px"],
            "VAE encoder": reference["vae_encoder@512px"],
            "TAESD decoder": reference["taesd_decoder@512px"],
            "TAESD encoder": taesd_encoder_tflops(),
            "text encoders": (reference["text_encoder@77tok_approx"]
                              + reference["text_encoder_2@77tok_approx"])}


def taesd_encoder_tflops() -> float:
    import torch
    from diffusers import AutoencoderTiny
    from torch.utils.flop_counter import FlopCounterMode

    encoder = AutoencoderTiny().encoder
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        encoder(torch.zeros(1, 3, 512, 512))
    return counter.get_total_flops() / 1e12


def floor_seconds(flops: dict[str, float], peaks: dict[str, float], unet_calls: int,
                  img2img: bool, taesd: bool, int8_unet: bool) -> float:
    """The least time a workload can take here: each stage's FLOPs at the peak of the precision
    it runs in (an INT8 weight-only UNet computes in bf16; only full INT8 uses the INT8 peak)."""
    bf16, int8 = peaks["bf16"], peaks["int8"]
    seconds = flops["text encoders"] * 1e12 / bf16
    seconds += unet_calls * flops["UNet"] * 1e12 / (int8 if int8_unet else bf16)
    seconds += flops["TAESD decoder" if taesd else "decoder"] * 1e12 / bf16
    if img2img:
        seconds += flops["TAESD encoder" if taesd else "VAE encoder"] * 1e12 / bf16
    return seconds
