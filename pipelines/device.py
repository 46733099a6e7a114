"""The OpenVINO device and precision a model is compiled for: what this machine offers, the
precision hint to ask for, and the precision a compiled model really runs in."""

import openvino as ov

from pipelines.errors import InvalidSetting
from pipelines.settings import PRECISIONS


def check(settings) -> None:
    """Refuse a device OpenVINO cannot see here (Settings' device; for commands that run a
    model)."""
    if (problem := problem_with(settings.device)) is not None:
        raise InvalidSetting(f"--device {settings.device}: {problem}")


def openvino_devices() -> list[str]:
    """The devices OpenVINO finds on this machine, e.g. ['CPU', 'GPU.0', 'NPU']."""
    return ov.Core().available_devices


def problem_with(device: str) -> str | None:
    """None if OpenVINO can run on `device` here, else why not. AUTO (OpenVINO picks) always can;
    GPU matches GPU.0, GPU.1, ..."""
    name = device.upper()
    if name.split(":")[0] in ("AUTO", "MULTI", "HETERO"):
        return None
    found = openvino_devices()
    if any(d == name or d.split(".")[0] == name for d in found):
        return None
    return f"OpenVINO sees no {device} device here; it sees: {', '.join(found)} (and AUTO)."


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


def precision_for(device: str, config: dict) -> str:
    """The precision a model compiled with `config` runs in on `device`. openvino.genai keeps its
    compiled models to itself, so this compiles a one-operation model with the same config
    and reads the precision back from it."""
    x = ov.opset13.parameter([1, 8], ov.Type.f32)
    probe = ov.Model([ov.opset13.relu(x)], [x], "precision-probe")
    return precision_of(ov.Core().compile_model(probe, device, config))
