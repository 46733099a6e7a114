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

    core = ov.Core()
    return {"name": core.get_property("CPU", "FULL_DEVICE_NAME"),
            "capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
            "default_precision": core.get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()}
