"""Session fixtures: the tiny stand-in, exported once through the real optimum-intel path."""

import os

import pytest

# Tests never reach the Hub; set before anything imports huggingface_hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """A models folder holding the tiny stand-in, exported with `export.export_model`."""
    from export import export_model

    folder = tmp_path_factory.mktemp("models")
    export_model("tiny", "fp16", folder)
    return folder


@pytest.fixture(scope="session")
def registry(models_dir):
    from pipelines.registry import Registry

    return Registry(models_dir)


@pytest.fixture(scope="session")
def loaded(registry):
    return registry.get("tiny", "fp16")


@pytest.fixture(scope="session")
def app_url(models_dir):
    """The app's importable `demo`, launched in-process on a free loopback port, serving the
    stand-in from the session's models folder."""
    os.environ["TURBO_MODELS_DIR"] = str(models_dir)
    from app import demo

    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo.local_url
    demo.close()
