"""--preload: the model the Text-to-Image tab opens on is loaded and run once as the app starts,
in the background, so that its first user meets neither the load nor the first run."""

import logging
import shutil
import threading
import time

import app
from pipelines import compiled_store
from pipelines.engine import LocalEngine
from pipelines.registry import Registry
from ui import preload
from ui.demo import LAUNCH_OPTIONS, opening_model


def test_the_opening_model_is_loaded_and_run_before_any_request(fresh_models):
    registry = Registry(fresh_models)
    assert opening_model(registry) == ("tiny", "fp16")  # the stand-in: no SDXL-Turbo here
    preload.start(LocalEngine(registry), lambda: opening_model(registry)).join(timeout=300)
    assert registry.loaded() == [("tiny", "fp16")]
    # It ran once: the store saves a model's parts only after a generation, once it is idle.
    registry.get("tiny", "fp16").parts.wait_saved()
    assert len(compiled_store.saved(fresh_models / ".ov-cache")) == 4


def test_a_failed_preload_is_logged_and_the_app_serves_on(fresh_models, caplog):
    registry = Registry(fresh_models)
    with caplog.at_level(logging.ERROR):
        preload.start(LocalEngine(registry), lambda: ("tiny", "int8")).join(timeout=300)
    assert "Preloading tiny (int8) failed" in caplog.text  # not exported in this folder
    assert registry.loaded() == []


def test_the_app_preloads_with_the_flag_and_only_with_it(models_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("TURBO_PRELOAD", raising=False)
    # Every stand-in the app serves, so that it starts no build (whose torch work would go on
    # beside the next tests), and an empty compiled-model store.
    folder = tmp_path / "models"
    shutil.copytree(models_dir, folder, ignore=shutil.ignore_patterns(".ov-cache", "logs"))
    for flags in ([], ["--preload"]):
        demo = app.create_demo(app.parse_settings(["--models-dir", str(folder), *flags]))
        demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True,
                    **LAUNCH_OPTIONS)
        try:
            threads = [t for t in threading.enumerate() if t.name == "preload"]
            assert len(threads) == len(flags)
            assert "stand-in build" not in [t.name for t in threading.enumerate()]
            for thread in threads:
                thread.join(timeout=300)
        finally:
            demo.close()
    # The preload's run: its parts are saved once the model has been idle for 2 s.
    deadline = time.monotonic() + 60
    while len(compiled_store.saved(folder / ".ov-cache")) < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(compiled_store.saved(folder / ".ov-cache")) == 4


def test_with_static_shapes_the_preload_warms_the_size_users_ask_for(fresh_models):
    from pipelines import catalogue
    from pipelines.compiled import Shape

    registry = Registry(fresh_models, static_shapes=True)
    preload.start(LocalEngine(registry), lambda: ("tiny", "fp16")).join(timeout=300)
    side = int(catalogue.get("tiny").size.default)
    parts = registry.get("tiny", "fp16").parts
    assert parts.shape == Shape(1, side, side)
    assert not parts.fit(Shape(1, side, side))  # a first request at the default: no recompile
