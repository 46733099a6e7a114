"""Which machine a result comes from: its name in result files and what its CPU can run."""

import os
import platform


def name() -> str:
    """TURBO_BENCH_MACHINE, else the host name: set it where hosts share a name."""
    return os.environ.get("TURBO_BENCH_MACHINE", platform.node())


def cpu() -> dict:
    """What the figures depend on: the CPU and the precisions OpenVINO can run on it (a CPU
    without bf16 runs every part in f32, and INT8 without VNNI gains little)."""
    import openvino as ov

    def get(key):
        return ov.Core().get_property("CPU", key)
    return {"name": get("FULL_DEVICE_NAME"), "capabilities": list(get("OPTIMIZATION_CAPABILITIES")),
            "default_precision": get("INFERENCE_PRECISION_HINT").to_string()}
