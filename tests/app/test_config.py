"""Flags and TURBO_* environment variables: what `python app.py` is started with reaches the app."""

import subprocess
import sys
from pathlib import Path

import pytest

import app

ROOT = Path(__file__).resolve().parents[2]
ENV_VARS = ("TURBO_HOST", "TURBO_PORT", "TURBO_SHARE", "TURBO_AUTH", "TURBO_DEVICE",
            "TURBO_QUEUE_SIZE", "TURBO_RAM_BUDGET_GB", "TURBO_PRECISION", "SPACE_ID")


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_flag_has_an_environment_variable(clean_env, tmp_path):
    for name, value in dict(TURBO_HOST="0.0.0.0", TURBO_PORT="8000", TURBO_SHARE="1",
                            TURBO_AUTH="ann:secret", TURBO_DEVICE="AUTO",
                            TURBO_MODELS_DIR=str(tmp_path), TURBO_QUEUE_SIZE="3",
                            TURBO_RAM_BUDGET_GB="2.5").items():
        clean_env.setenv(name, value)
    args = app.parse_args([])
    assert (args.host, args.port, args.share, args.auth) == ("0.0.0.0", 8000, True, "ann:secret")
    assert (args.device, args.models_dir, args.queue_size) == ("AUTO", tmp_path, 3)
    assert float(args.ram_budget_gb) == 2.5


def test_flags_win_over_the_environment(clean_env, tmp_path):
    clean_env.setenv("TURBO_PORT", "8000")
    args = app.parse_args(["--port", "9000", "--models-dir", str(tmp_path), "--device", "cpu"])
    assert args.port == 9000 and args.models_dir == tmp_path


def test_defaults_are_loopback_and_cpu(clean_env):
    args = app.parse_args([])
    assert (args.host, args.port, args.share, args.device) == ("127.0.0.1", 7860, False, "CPU")


def test_a_space_binds_every_interface(clean_env):
    clean_env.setenv("SPACE_ID", "someone/turbo-studio")
    assert app.parse_args([]).host == "0.0.0.0"


def test_share_from_the_environment_still_needs_auth(clean_env):
    clean_env.setenv("TURBO_SHARE", "true")
    with pytest.raises(SystemExit):
        app.parse_args([])


def test_an_unknown_device_stops_the_start_with_what_openvino_sees(clean_env, capsys):
    with pytest.raises(SystemExit) as stopped:
        app.parse_args(["--device", "QPU"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "--device QPU" in error and "it sees: CPU" in error


@pytest.mark.parametrize("name, value, message", [
    ("TURBO_PRECISION", "fp8", "--precision (TURBO_PRECISION) 'fp8': choose one of"),
    ("TURBO_PORT", "http", "argument --port: invalid int value: 'http'"),
    ("TURBO_QUEUE_SIZE", "0", "--queue-size (TURBO_QUEUE_SIZE) must be at least 1"),
])
def test_a_bad_environment_value_stops_the_start_with_a_message(clean_env, capsys, name, value,
                                                                message):
    clean_env.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        app.parse_args([])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_app_py_with_an_unknown_device_exits_with_a_message(clean_env):
    done = subprocess.run([sys.executable, "app.py", "--device", "QPU"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "OpenVINO sees no QPU device" in done.stderr and "Traceback" not in done.stderr


def test_the_demo_is_built_from_the_flags(clean_env, models_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.symlink_to(models_dir)  # another models folder, with the stand-in already in it
    demo = app.demo_from(app.parse_args(["--models-dir", str(elsewhere), "--device", "AUTO"]))
    texts = " ".join(str(block.value) for block in demo.blocks.values()
                     if isinstance(getattr(block, "value", None), str))
    assert f"`{elsewhere / 'tiny'}`" in texts and "on **AUTO**" in texts
    assert "OpenVINO sees: CPU" in texts
