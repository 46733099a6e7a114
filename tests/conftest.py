"""Session set-up: a private models folder holding the tiny stand-in, FP16 and INT8, exported
once through the real optimum-intel and NNCF path, its Tiny Autoencoder (TAESD), FP16 and INT8,
and the stand-ins of Segmind-VegaRT (its tiny LoRA fused) and SDXL base, FP16."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Tests never reach the Hub; set before anything imports huggingface_hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


INT8_SAMPLES = 4  # calibration samples: enough to exercise the path, quick on a tiny model


def pytest_configure(config):
    # Before collection: importing app builds `demo` from TURBO_MODELS_DIR (which must never be
    # the user's own ./models) and lists the variants exported there.
    folder = tempfile.mkdtemp(prefix="turbo-test-models-")
    os.environ["TURBO_MODELS_DIR"] = folder
    from export import export_autoencoder, export_model

    export_model("tiny", "fp16", Path(folder))
    export_model("tiny", "int8", Path(folder), samples=INT8_SAMPLES)
    export_autoencoder("tiny-taesd", Path(folder))
    export_autoencoder("tiny-taesd", Path(folder), variant="int8", samples=INT8_SAMPLES)
    export_model("tiny-vega", "fp16", Path(folder))  # with its tiny LoRA fused
    export_model("tiny-base", "fp16", Path(folder))


def pytest_unconfigure(config):
    shutil.rmtree(os.environ.pop("TURBO_MODELS_DIR"), ignore_errors=True)


@pytest.fixture(scope="session")
def models_dir():
    """The session's models folder, with tiny/fp16, tiny/int8, tiny-taesd, tiny-taesd-int8,
    tiny-vega/fp16 and tiny-base/fp16."""
    return Path(os.environ["TURBO_MODELS_DIR"])


@pytest.fixture(scope="session")
def registry(models_dir):
    from pipelines.registry import Registry

    return Registry(models_dir)


@pytest.fixture(scope="session")
def loaded(registry):
    return registry.get("tiny", "fp16")


@pytest.fixture(scope="session")
def app_url(models_dir):
    """The app's importable `demo`, launched in-process on a free loopback port."""
    from app import LAUNCH_OPTIONS, demo

    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **LAUNCH_OPTIONS)
    yield demo.local_url
    demo.close()
