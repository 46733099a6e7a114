"""`python -m benchmarks.standins`: one command builds every stand-in the chosen benchmark
configurations need, in an order where each step finds what it builds on, skipping what is
there. The full-size steps are checked through their plan (building them takes many minutes
and gigabytes); the tiny ones are built for real."""

import dataclasses
import shutil

import pytest

from benchmarks import folders, standins
from benchmarks.runners import CONFIGS

ALL = ["fp16", "taesd", "taesd-int8", "int8", "int8-weights", "torch"]


@pytest.fixture
def full_size(monkeypatch, tmp_path):
    """The full-size stand-ins' folders, empty, in a temporary folder."""
    monkeypatch.setenv("TURBO_STANDINS_DIR", str(tmp_path))
    return folders.existing(quick=False)


def keys(configs: list[str], found: folders.Folders, quick: bool = False) -> list[str]:
    needs = set().union(*(CONFIGS[key].needs for key in configs))
    return [step.key for step in folders.plan(found, needs, quick)]


def test_every_configuration_is_planned_in_dependency_order(full_size):
    # The INT8 TAESD calibrates on the FP16 model's latents and quantizes the FP16 TAESD:
    # README's steps once asked for it before the FP16 TAESD existed.
    assert keys(list(CONFIGS), full_size) == ALL


@pytest.mark.parametrize("config, expected", [
    ("a0", ["fp16"]),
    ("e-fp16-taesd", ["fp16", "taesd"]),
    ("c-int8", ["fp16", "taesd", "int8"]),  # a peer: its view links the FP16 TAESD
    ("e-int8-taesd", ["fp16", "taesd", "taesd-int8", "int8"]),  # ours decodes with INT8 TAESD
    ("b", ["fp16", "taesd", "int8-weights"]),
    ("d", ["fp16", "torch"]),
])
def test_each_configuration_gets_what_it_runs_on(full_size, config, expected):
    assert keys([config], full_size) == expected


def test_what_is_built_already_is_skipped_and_the_rest_built_in_order(full_size):
    (full_size.root / "fp16").mkdir(parents=True)
    (full_size.root / "fp16" / "model_index.json").write_text("{}")
    for half in ("vae_decoder", "vae_encoder"):
        (full_size.models_dir / "taesdxl" / half).mkdir(parents=True)
        (full_size.models_dir / "taesdxl" / half / "openvino_model.xml").write_text("")
    steps = folders.plan(full_size, CONFIGS["e-int8-taesd"].needs, quick=False)
    built = []
    folders.run([dataclasses.replace(step, build=lambda key=step.key: built.append(key))
                 for step in steps])
    assert built == ["taesd-int8", "int8"]


def test_an_unknown_configuration_is_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        standins.main(["--configs", "a0,nope"])
    assert stopped.value.code == 2 and "unknown configuration nope" in capsys.readouterr().err


def test_the_tiny_int8_taesd_is_built_on_what_is_there(models_dir, monkeypatch, tmp_path):
    """--quick, for real: with the tiny model (FP16, INT8) and the FP16 TAESD in place, only the
    INT8 TAESD is built, calibrated on the FP16 model, and nothing else is touched."""
    for name in ("tiny", "tiny-taesd"):
        shutil.copytree(models_dir / name, tmp_path / name)
    monkeypatch.setenv("TURBO_BENCH_QUICK_DIR", str(tmp_path))
    before = (tmp_path / "tiny" / "fp16" / "model_index.json").stat().st_mtime_ns
    found = folders.prepare(True, CONFIGS["e-int8-taesd"].needs)
    assert found.models_dir == tmp_path
    assert all(step.done() for step in folders.plan(found, CONFIGS["e-int8-taesd"].needs, True))
    assert (tmp_path / "tiny-taesd-int8" / "manifest.json").is_file()
    assert (tmp_path / "tiny" / "fp16" / "model_index.json").stat().st_mtime_ns == before
