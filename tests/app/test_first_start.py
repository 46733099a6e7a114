"""An offline first start on a serving-only install (requirements.txt: no optimum-intel) cannot
build the stand-ins: the page says which requirements file to install, and the app serves on."""

import importlib.util

from ui import first_start


def test_a_serving_only_install_says_to_install_the_export_requirements(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "optimum" else real(name, *a))
    build = first_start.stand_in_build(tmp_path, ["tiny"])
    assert build is not None and build.start().finished.wait(timeout=30)
    assert isinstance(build.error, ModuleNotFoundError)
    status = build.status()
    assert "requirements-export.txt" in status and status.startswith("⚠")
    assert not (tmp_path / "tiny").exists()  # nothing half-built


def test_with_the_export_side_installed_the_build_is_planned(tmp_path):
    build = first_start.stand_in_build(tmp_path, ["tiny"])
    assert build is not None and build.error is None and not build.finished.is_set()


def test_the_app_plans_a_build_only_where_its_stand_ins_are_missing(tmp_path, models_dir):
    # What the throughput benchmark builds before it starts the app (so no build runs while it
    # measures): the app's own plan, empty once every stand-in is there.
    from pipelines.settings import Settings
    from ui.demo import first_start_build

    assert first_start_build(Settings(models_dir=tmp_path)) is not None
    assert first_start_build(Settings(models_dir=models_dir)) is None
