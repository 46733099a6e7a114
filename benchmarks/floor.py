"""The compute floor: how fast a configuration could be if every stage ran at this machine's peak.

Peaks are measured here, in the same run, with kernels compiled by OpenVINO in the shapes the
UNet has (a 3×3 convolution and a MatMul, which the CPU plugin runs as FullyConnected): in bf16
(f32 on a CPU without bf16) and quantized, where the plugin runs them as u8×i8 (VNNI/AMX where
the CPU has them). Each kernel's precision is read back from the compiled runtime graph, so an
"INT8" peak that OpenVINO actually ran in floating point is an error, not a number.
FLOPs per forward come from the reference architectures (torch.utils.flop_counter on the real
configs, 2 FLOPs per multiply-add); the TAESD encoder's is counted here the same way.

    python -m benchmarks.floor   # the peaks and each stage's floor at 512², into results/
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

ARCHITECTURES = Path(__file__).resolve().parent / "sdxl_architectures.json"
RESULTS = Path(__file__).resolve().parent / "results"
# SDXL UNet shapes at 512² (64² latents): an attention projection at 32² (640 channels) and a
# 3x3 convolution at 32². Large enough to reach the peak, small enough to time in seconds.
TOKENS, WIDTH = 1024, 640
KERNEL_PRECISIONS = {"bf16": ("bf16", "f32", "f16"), "int8": ("u8", "i8")}


def peak(precision: str, repeats: int = 6) -> tuple[float, str]:
    """(FLOP/s, kernel) of the fastest kernel in `precision` ("bf16" or "int8"): the best of
    `repeats` calls of each, the kernel as OpenVINO names it ("Convolution jit_avx2_I8 u8")."""
    best = (0.0, "")
    for kernel, flops in (_matmul(precision), _convolution(precision)):
        seconds, name = _time(kernel, precision, repeats)
        best = max(best, (flops / seconds, name))
    return best


def _quantized(node, low: float, high: float, levels: int):
    """A FakeQuantize: what NNCF leaves in a quantized model. The CPU plugin runs the op after
    it in INT8 only for u8 activations (256 levels from 0) and i8 weights (255 levels)."""
    import openvino.opset13 as ops

    bounds = [ops.constant(np.float32(v)) for v in (low, high, low, high)]
    return ops.fake_quantize(node, *bounds, levels)


def _matmul(precision: str):
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([1, TOKENS * 4, WIDTH * 2], np.float32, name="x")
    weights = ops.constant((rng.standard_normal((WIDTH * 2, WIDTH * 2)) * 0.05).astype(np.float32))
    if precision == "int8":
        x_, weights = _quantized(x, 0.0, 4.0, 256), _quantized(weights, -0.2, 0.2, 255)
    else:
        x_ = x
    model = ov.Model([ops.matmul(x_, weights, False, True)], [x])
    return model, 2 * TOKENS * 4 * (WIDTH * 2) ** 2


def _convolution(precision: str):
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    side = int(TOKENS ** 0.5)
    x = ops.parameter([1, WIDTH, side, side], np.float32, name="x")
    weights = ops.constant((rng.standard_normal((WIDTH, WIDTH, 3, 3)) * 0.05).astype(np.float32))
    if precision == "int8":
        x_, weights = _quantized(x, 0.0, 4.0, 256), _quantized(weights, -0.2, 0.2, 255)
    else:
        x_ = x
    model = ov.Model([ops.convolution(x_, weights, [1, 1], [1, 1], [1, 1], [1, 1])], [x])
    return model, 2 * WIDTH * WIDTH * 9 * side * side


def _time(model, precision: str, repeats: int) -> tuple[float, str]:
    """Seconds of the best call, and the kernel the runtime graph says ran (checked to be in
    `precision`)."""
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "bf16",
                                                     "PERFORMANCE_HINT": "LATENCY"})
    name = runtime_kernel(compiled)
    if name.rsplit(" ", 1)[-1] not in KERNEL_PRECISIONS[precision]:
        raise RuntimeError(f"OpenVINO ran the {precision} probe as {name}: its peak would be "
                           "another precision's")
    request = compiled.create_infer_request()
    shape = list(model.input(0).get_shape())
    data = np.abs(np.random.default_rng(1).standard_normal(shape)).astype(np.float32)
    request.infer({0: data})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        request.infer({0: data})
        times.append(time.perf_counter() - start)
    return min(times), name


def runtime_kernel(compiled) -> str:
    """"<layer> <primitive> <precision>" of the compiled model's one compute layer, from the
    runtime graph OpenVINO executes (e.g. "FullyConnected jit_gemm_I8 u8")."""
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = info["layerType"].astype(str)
        if layer in ("FullyConnected", "MatMul", "Convolution"):
            return (f"{layer} {info['primitiveType'].astype(str)} "
                    f"{info['runtimePrecision'].astype(str)}")
    raise RuntimeError("no compute layer in the runtime graph")


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
                  img2img: bool, taesd: bool, int8: frozenset = frozenset()) -> dict[str, float]:
    """The least time each stage of a workload can take here, named as the benchmark times
    them, and their "total": each stage's FLOPs at the peak of the precision it computes in.
    `int8` names the stages that are fully quantized ("UNet", "decoder", "VAE encoder"); an
    INT8 weight-only part (the text encoders, the int8-weights UNet) computes in bf16."""
    def at_peak(stage: str, tflops: float) -> float:
        return tflops * 1e12 / peaks["int8" if stage in int8 else "bf16"]

    stages = {"text encoders": at_peak("text encoders", flops["text encoders"])}
    if img2img:
        stages["VAE encoder"] = at_peak("VAE encoder",
                                        flops["TAESD encoder" if taesd else "VAE encoder"])
    stages["UNet"] = unet_calls * at_peak("UNet", flops["UNet"])
    stages["decoder"] = at_peak("decoder", flops["TAESD decoder" if taesd else "decoder"])
    stages["total"] = sum(stages.values())
    return stages


def main() -> int:
    from benchmarks import machine, report

    peaks, kernels = {}, {}
    for precision in ("bf16", "int8"):
        peaks[precision], kernels[precision] = peak(precision)
    flops = stage_tflops()
    floors = {"W1, FP16 + TAESD": floor_seconds(flops, peaks, 1, False, True),
              "W1, INT8 UNet + INT8 TAESD": floor_seconds(flops, peaks, 1, False, True,
                                                          frozenset({"UNet", "decoder"}))}
    result = {"benchmark": "floor", "machine": machine.name(), "cpu": machine.cpu(),
              "peaks_tflops": {p: round(v / 1e12, 4) for p, v in peaks.items()},
              "peak_kernels": kernels, "stage_tflops": flops,
              "floor_seconds": {k: {s: round(v, 3) for s, v in f.items()}
                                for k, f in floors.items()}}
    text = _markdown(result)
    report.write(RESULTS / f"floor-{machine.name()}", result, text)
    print(text)
    return 0


def _markdown(result: dict) -> str:
    cpu = result["cpu"]
    lines = [f"### {result['machine']}: compute peaks and the floor per stage at 512²", "",
             f"CPU: {cpu['name']}; OpenVINO can run {', '.join(cpu['capabilities'])} here.", "",
             "| precision | peak TFLOP/s (TOP/s) | fastest kernel (runtime graph) |",
             "|---|---|---|"]
    lines += [f"| {p} | {result['peaks_tflops'][p]} | {result['peak_kernels'][p]} |"
              for p in ("bf16", "int8")]
    stages = ["text encoders", "UNet", "decoder", "total"]
    lines += ["", "| floor, seconds | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
    lines += [f"| {name} | " + " | ".join(str(floor[s]) for s in stages) + " |"
              for name, floor in result["floor_seconds"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
