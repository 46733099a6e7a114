"""Session set-up. The stand-ins are built only when a test asks for them (the `models_dir`
fixture): once per session, through the real optimum-intel and NNCF path, into a private
folder. Tests that need no model (tests/pipelines/test_requests.py, say) run in seconds."""

import os
from pathlib import Path

import pytest

# Tests never reach the Hub; set before anything imports huggingface_hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def pytest_addoption(parser):
    parser.addoption("--screenshots", metavar="DIR",
                     help="write the browser tests' screenshots here (to refresh "
                          "assets/screenshots/, give that folder); default: a temporary folder")
    parser.addoption("--stand-ins", metavar="DIR",
                     help="keep the session's stand-ins in DIR and reuse those already there "
                          "(faster reruns while developing); default: built afresh in a "
                          "temporary folder")


@pytest.fixture(scope="session", autouse=True)
def temporary_files_stay_in_the_session(tmp_path_factory):
    """Temporary files of this process (gradio's upload cache, and gradio_client's downloads,
    which leave an empty folder in the temp directory per file) go under pytest's own folder,
    which pytest prunes, instead of piling up in /tmp run after run."""
    import tempfile

    folder = tmp_path_factory.mktemp("tmp")
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    yield
    tempfile.tempdir = before


@pytest.fixture(scope="session")
def models_dir(request, tmp_path_factory):
    """The session's models folder with every stand-in an offline first start builds: tiny
    (fp16, int8), tiny-taesd (fp16, int8), tiny-vega (fp16, its tiny LoRA fused), tiny-base
    (fp16)."""
    from export import standins

    kept = request.config.getoption("--stand-ins")
    folder = Path(kept) if kept else tmp_path_factory.mktemp("models")
    standins.build(folder)
    return folder


@pytest.fixture
def fresh_models(models_dir, tmp_path):
    """The tiny stand-in (FP16) and its TAESD in a folder of their own: an empty compiled-model
    store, nothing loaded from it yet."""
    import shutil

    for name in ("tiny/fp16", "tiny-taesd"):
        shutil.copytree(models_dir / name, tmp_path / name)
    return tmp_path


@pytest.fixture(scope="session")
def public_repos(models_dir, tmp_path_factory):
    """The public pre-exported repos laid out file for file as the Hub has them, with the
    stand-ins' weights (tests/publichub.py): repo -> folder."""
    from tests import publichub

    return publichub.build_all(models_dir, tmp_path_factory.mktemp("public-hub"))


@pytest.fixture(scope="session")
def registry(models_dir):
    from pipelines.registry import Registry

    return Registry(models_dir)


@pytest.fixture(scope="session")
def loaded(registry):
    return registry.get("tiny", "fp16")


@pytest.fixture(scope="session")
def app_url(models_dir):
    """The app as `python app.py --models-dir <the session's>` makes it, launched in-process on
    a free loopback port."""
    import app
    from ui.demo import LAUNCH_OPTIONS

    demo = app.create_demo(app.parse_settings(["--models-dir", str(models_dir)]))
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **LAUNCH_OPTIONS)
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="session")
def space(public_repos, tmp_path_factory):
    """app.py started as the hosted Space starts it: in the serving-only install (.ci/run's,
    named by TURBO_SERVING_PYTHON; else this interpreter), SPACE_ID set, an empty models
    folder, and the Hugging Face cache holding README's preload_from_hub repos laid out as on
    the Hub. Yields (url, its log, its root folder)."""
    import sys

    from benchmarks import app_process
    from tests.app.test_space import front_matter
    from tests.hubfake import put_in_cache

    root = tmp_path_factory.mktemp("space")
    for repo in front_matter()["preload_from_hub"]:
        put_in_cache(root / "hf-cache", repo, public_repos[repo])
    port = app_process.free_port()
    log = root / "app.log"
    process = app_process.start(
        log, python=os.environ.get("TURBO_SERVING_PYTHON") or sys.executable, environ={
            "SPACE_ID": "someone/turbo-studio", "HF_HUB_CACHE": str(root / "hf-cache"),
            "TURBO_MODELS_DIR": str(root / "models"), "TURBO_PORT": str(port),
            "TURBO_VERBOSE": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        app_process.wait_until_up(process, url, log, 180)
        yield url, log, root
    finally:
        app_process.stop(process)
