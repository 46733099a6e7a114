"""Flags and TURBO_* variables: what `python app.py` is started with reaches the app, through one
Settings object; a value that cannot work stops the start with a message."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import app
from pipelines import settings
from pipelines.settings import Settings
from ui.app_settings import AppSettings

OPTIONS = AppSettings.OPTIONS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch):
    for name in [option.variable for option in OPTIONS.values()] + ["SPACE_ID"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_flag_has_an_environment_variable(clean_env, tmp_path):
    for name, value in dict(TURBO_HOST="0.0.0.0", TURBO_PORT="8000", TURBO_SHARE="1",
                            TURBO_AUTH="ann:secret", TURBO_DEVICE="AUTO",
                            TURBO_MODELS_DIR=str(tmp_path), TURBO_QUEUE_SIZE="3",
                            TURBO_RAM_BUDGET_GB="2.5", TURBO_OV_CACHE="off",
                            TURBO_STATIC_SHAPES="yes", TURBO_PRECISION="F32",
                            TURBO_VERBOSE="true").items():
        clean_env.setenv(name, value)
    got = app.parse_settings([])
    assert (got.host, got.port, got.share, got.auth) == ("0.0.0.0", 8000, True, "ann:secret")
    assert (got.device, got.models_dir, got.queue_size) == ("AUTO", tmp_path, 3)
    assert got.ram_budget_gb == 2.5 and got.ram_budget == int(2.5 * 2**30)
    assert (got.ov_cache, got.static_shapes, got.precision, got.verbose) == (False, True, "f32",
                                                                              True)
    # The web server's settings are the app's, not the serving settings the registry, the
    # CLIs and Ray's workers take.
    assert not {"host", "port", "share", "auth", "queue_size", "mcp", "ray", "replicas",
                "preload"} & set(settings.SERVING)
    # Every setting has both, with one naming rule.
    assert {f.name for f in dataclasses.fields(AppSettings)} == set(OPTIONS)
    help_text = app.parser().format_help()
    assert all(option.flag in help_text and option.variable in help_text
               for option in OPTIONS.values())


def test_flags_win_over_the_environment(clean_env, tmp_path):
    clean_env.setenv("TURBO_PORT", "8000")
    clean_env.setenv("TURBO_OV_CACHE", "1")
    got = app.parse_settings(["--port", "9000", "--models-dir", str(tmp_path), "--device",
                              "cpu", "--no-ov-cache"])
    assert got.port == 9000 and got.models_dir == tmp_path and got.device == "CPU"
    assert got.ov_cache is False


def test_defaults_are_loopback_and_cpu(clean_env):
    got = app.parse_settings([])
    assert (got.host, got.port, got.share, got.device) == ("127.0.0.1", 7860, False, "CPU")
    assert got == AppSettings()


def test_a_space_binds_every_interface_and_preloads(clean_env):
    assert not app.parse_settings([]).preload
    clean_env.setenv("SPACE_ID", "someone/turbo-studio")
    assert app.parse_settings([]).host == "0.0.0.0"
    assert app.parse_settings([]).preload  # a Space wakes for a visitor
    assert not app.parse_settings(["--no-preload"]).preload
    clean_env.setenv("TURBO_PRELOAD", "off")
    assert not app.parse_settings([]).preload


def test_share_from_the_environment_still_needs_auth(clean_env):
    clean_env.setenv("TURBO_SHARE", "true")
    with pytest.raises(SystemExit):
        app.parse_settings([])


def test_an_unknown_device_stops_the_start_with_what_openvino_sees(clean_env, capsys):
    with pytest.raises(SystemExit) as stopped:
        app.parse_settings(["--device", "QPU"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "--device QPU" in error and "it sees: CPU" in error


@pytest.mark.parametrize("name, value, message", [
    ("TURBO_PRECISION", "fp8", "--precision (TURBO_PRECISION) 'fp8': choose one of"),
    ("TURBO_PORT", "http", "argument --port (TURBO_PORT): invalid int value: 'http'"),
    ("TURBO_QUEUE_SIZE", "0", "--queue-size (TURBO_QUEUE_SIZE) must be at least 1"),
    ("TURBO_RAM_BUDGET_GB", "-2", "must be more than 0, not -2"),
    ("TURBO_RAM_BUDGET_GB", "0", "must be more than 0, not 0"),
    ("TURBO_OV_CACHE", "maybe", "TURBO_OV_CACHE) 'maybe' is neither yes"),
])
def test_a_bad_environment_value_stops_the_start_with_a_message(clean_env, capsys, name, value,
                                                                message):
    clean_env.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        app.parse_settings([])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_a_bad_flag_value_stops_the_start_with_a_message(clean_env, capsys):
    with pytest.raises(SystemExit) as stopped:
        app.parse_settings(["--ram-budget-gb", "-1"])
    assert stopped.value.code == 2 and "must be more than 0" in capsys.readouterr().err


@pytest.mark.parametrize("value, expected", [
    ("1", True), ("TRUE", True), (" yes ", True), ("on", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("", False), (None, False),
])
def test_one_parser_for_yes_and_no(value, expected):
    assert settings.yes_no(value) is expected


def test_hf_hub_offline_means_the_same_everywhere():
    assert settings.hub_offline({"HF_HUB_OFFLINE": "on"})
    assert not settings.hub_offline({})
    with pytest.raises(settings.InvalidSetting, match="HF_HUB_OFFLINE"):
        settings.hub_offline({"HF_HUB_OFFLINE": "perhaps"})


def test_importing_app_builds_nothing_and_leaves_the_environment_alone():
    check = ("import os, sys; before = dict(os.environ); import app; "
             "assert dict(os.environ) == before, 'the environment changed'; "
             "heavy = {'gradio', 'openvino', 'torch', 'ui.demo'} & set(sys.modules); "
             "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "SPACE_ID": "someone/x"})
    assert done.returncode == 0, done.stderr


def test_app_py_with_an_unknown_device_exits_with_a_message(clean_env):
    done = subprocess.run([sys.executable, "app.py", "--device", "QPU"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "OpenVINO sees no QPU device" in done.stderr and "Traceback" not in done.stderr


def test_the_demo_is_built_from_the_flags(clean_env, models_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.symlink_to(models_dir)  # another models folder, with the stand-in already in it
    demo = app.create_demo(app.parse_settings(["--models-dir", str(elsewhere), "--device",
                                               "AUTO"]))
    texts = " ".join(str(block.value) for block in demo.blocks.values()
                     if isinstance(getattr(block, "value", None), str))
    assert f"`{elsewhere / 'tiny'}`" in texts and "on **AUTO**" in texts
    assert "OpenVINO sees: CPU" in texts


def test_a_command_reads_only_the_variables_of_its_own_flags(clean_env, tmp_path):
    """TURBO_PORT=http is the app's problem, not the export CLI's."""
    clean_env.setenv("TURBO_PORT", "http")
    clean_env.setenv("TURBO_SHARE", "1")
    clean_env.setenv("TURBO_MODELS_DIR", str(tmp_path))
    command = settings.argparse.ArgumentParser()
    settings.add_flags(command, ("models_dir", "verbose"))
    _, got = settings.parse(command, [])
    assert got == Settings(models_dir=tmp_path)  # the serving settings, the web app's unread
