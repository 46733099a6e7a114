"""`python -m export add/remove`: the user's own model (a diffusers folder of the tiny SDXL
stand-in, with a tiny peft-made LoRA at two scales) added, listed, served through the registry,
the CLI and the app, and removed; bad inputs refused with a message and exit status 2."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from export import tiny, user
from export.__main__ import main as export_cli
from pipelines import generate
from pipelines.registry import Registry
from pipelines.requests import Text2Image, validate

ROOT = Path(__file__).resolve().parents[2]


def run(module: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The tiny stand-in's diffusers source (what the `tiny` model is exported from), a LoRA
    that fits it and one made for the Vega-like UNet (another architecture)."""
    work = tmp_path_factory.mktemp("inputs")
    return dict(source=tiny.save_source(work / "source"),
                lora=tiny.save_lora(work / "sdxl-lora", vega=False),
                vega_lora=tiny.save_lora(work / "vega-lora"))


@pytest.fixture(scope="module")
def models(models_dir, tmp_path_factory, inputs):
    """A copy of the session's stand-ins (other tests list those) with two models of ours: the
    LoRA at 0.5 added through the CLI, at 1.0 through the API."""
    folder = tmp_path_factory.mktemp("own") / "models"
    shutil.copytree(models_dir, folder, ignore=shutil.ignore_patterns(".ov-cache", "logs"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # in-process: a subprocess's imports took 14 s
        assert export_cli(["add", "styled-half", "--from", str(inputs["source"]), "--lora",
                           f"{inputs['lora']}:0.5", "--models-dir", str(folder)]) == 0
    assert "added styled-half" in printed.getvalue()
    user.add("styled", str(inputs["source"]), folder, loras=(user.Lora(str(inputs["lora"])),))
    return folder


def image(registry: Registry, model_id: str) -> np.ndarray:
    request = validate(Text2Image("a red fox", model_id=model_id, seed=7, width=256, height=256,
                                  fast_decoder=False), registry.catalogue)
    return np.asarray(generate.run(registry.get(model_id, "fp16"), request).image)


def test_added_models_are_served_and_the_lora_scale_shows(models):
    registry = Registry(models, cache=False)
    assert registry.catalogue.user_ids == ["styled-half", "styled"]
    spec = registry.catalogue.get("styled")
    assert (spec.base, spec.scheduler, spec.steps.default) == ("sdxl-turbo",
                                                               "EulerAncestralDiscreteScheduler", 1)
    base, half, full = (image(registry, m) for m in ("tiny", "styled-half", "styled"))
    assert not np.array_equal(base, half) and not np.array_equal(half, full)
    assert not np.array_equal(base, full)
    assert np.array_equal(full, image(registry, "styled"))  # same seed, same image


def test_manifest_records_sources_loras_scales_and_hashes(models, inputs):
    manifest = json.loads((models / "styled-half" / "fp16" / "manifest.json").read_text())
    assert manifest["source"] == str(inputs["source"]) and manifest["base"] == "sdxl-turbo"
    [lora] = manifest["loras"]
    assert lora["scale"] == 0.5 and lora["source"] == str(inputs["lora"])
    assert all(len(h) == 64 for h in [*lora["sha256"].values(), *manifest["sha256"].values()])
    assert "unet/diffusion_pytorch_model.safetensors" in manifest["sha256"]


def test_listed_and_generated_through_the_cli(models, tmp_path):
    listing = run("pipelines", "list", "--models-dir", models)
    assert listing.returncode == 0, listing.stderr
    assert ("styled-half: styled-half" in listing.stdout
            and "sdxl-turbo's settings" in listing.stdout)
    out = tmp_path / "half.png"
    made = run("pipelines", "generate", "a red fox", "--model", "styled-half", "--seed", "7",
               "--width", 256, "--height", 256, "--no-fast-decoder", "-o", out,
               "--models-dir", models)
    assert made.returncode == 0, made.stderr
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")),
                          image(Registry(models, cache=False), "styled-half"))


def test_the_app_offers_the_model_and_serves_it_by_model_id(models):
    from gradio_client import Client

    from ui.demo import LAUNCH_OPTIONS, build_demo

    demo = build_demo(Registry(models, cache=False))
    choices = [c.get("props", {}).get("choices") for c in demo.config["components"]
               if c.get("props", {}).get("label") == "Model"]
    assert ("styled", "styled") in choices[0]  # the Text-to-Image tab's model choice
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **LAUNCH_OPTIONS)
    try:
        path, seed, _, _ = Client(demo.local_url, verbose=False).predict(
            "a red fox", 7, False, 1, 256, 256, "fp16", False, "styled",
            api_name="/text_to_image")
        assert seed == 7
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")),
                              image(Registry(models, cache=False), "styled"))
    finally:
        demo.close()


@pytest.mark.parametrize("args, message", [
    (["add", "x", "--from", "{source}", "--base", "tiny"], "Unknown base 'tiny'"),
    (["add", "x", "--from", "{tmp}/model.ckpt"], "pickles"),
    (["add", "x", "--from", "{source}", "--lora", "{tmp}/style.bin:0.5"], "pickles"),
    (["add", "x", "--from", "{source}", "--lora", "{vega_lora}"], "does not fit"),
    (["add", "tiny", "--from", "{source}"], "taken by a built-in"),
    (["add", "tiny-taesd-int8", "--from", "{source}"], "taken by a built-in"),
    (["add", "../evil", "--from", "{source}"], "not allowed"),
    (["add", "My-Model", "--from", "{source}"], "not allowed"),
    (["remove", "tiny"], "built in"),
    (["remove", "nothing-here"], "no model of yours"),
])
def test_bad_inputs_exit_2_with_a_message(args, message, inputs, tmp_path, capsys):
    (tmp_path / "model.ckpt").write_bytes(b"pickle")
    (tmp_path / "style.bin").write_bytes(b"pickle")
    values = {key: str(value) for key, value in inputs.items()} | {"tmp": str(tmp_path)}
    argv = [a.format(**values) for a in args] + ["--models-dir", str(tmp_path / "models")]
    assert export_cli(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "models" / "x").exists()  # refused before any folder was made


def test_a_broken_user_catalogue_is_named_and_the_built_ins_served(models_dir, tmp_path, inputs,
                                                                  capsys):
    folder = tmp_path / "models"
    shutil.copytree(models_dir / "tiny", folder / "tiny")
    (folder / "catalogue.json").write_text(json.dumps({"models": {
        "mine": {"base": "sdxl-turbo", "source": "x", "variants": ["fp16"], "steps": "two"}}}))
    registry = Registry(folder, cache=False)
    assert "tiny" in registry.catalogue and "mine" not in registry.catalogue
    [problem] = registry.catalogue.problems
    assert str(folder / "catalogue.json") in problem and "models.mine: steps" in problem
    listing = run("pipelines", "list", "--models-dir", folder)
    assert listing.returncode == 0 and "models.mine: steps" in listing.stderr
    (folder / "catalogue.json").write_text("{not json")
    assert "not readable as JSON" in Registry(folder, cache=False).catalogue.problems[0]
    # Rewriting a file that did not load would lose it: add refuses until it is fixed.
    assert export_cli(["add", "x", "--from", str(inputs["source"]), "--models-dir",
                       str(folder)]) == 2
    assert "Fix or move away" in capsys.readouterr().err


def test_remove_deletes_entry_and_folder(models, capsys):
    assert export_cli(["remove", "styled-half", "--models-dir", str(models)]) == 0
    assert not (models / "styled-half").exists()
    registry = Registry(models, cache=False)
    assert registry.catalogue.user_ids == ["styled"] and "styled-half" not in registry.catalogue


def test_a_missing_export_of_yours_names_the_add_line_that_makes_it(tmp_path):
    """`python -m export NAME` refuses a user model's fp16 and `add` refuses a name in use: the
    message says remove, then the entry's own `export add` line."""
    from pipelines.errors import ModelNotAvailable

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "catalogue.json").write_text(json.dumps({"models": {"mine": {
        "base": "sdxl-turbo", "source": "/my models/fine.safetensors", "variants": ["fp16"],
        "config": "/cfg", "loras": [{"source": "owner/style", "scale": 0.5}], "steps": 2}}}))
    with pytest.raises(ModelNotAvailable) as refused:
        Registry(folder, cache=False).get("mine", "fp16")
    line = ("python -m export remove mine && python -m export add mine --from "
            "'/my models/fine.safetensors' --base sdxl-turbo --config /cfg "
            "--lora owner/style:0.5 --steps 2")
    assert line in str(refused.value) and "`python -m export mine`" not in str(refused.value)
    listing = run("pipelines", "list", "--models-dir", folder)
    assert line in listing.stdout


@pytest.mark.parametrize("source, kind", [
    ("stabilityai/stable-diffusion-xl-base-1.0", "hub"),  # a dot in its name: still a Hub id
    ("segmind/Segmind-Vega", "hub"),
])
def test_a_hub_id_is_a_hub_id_whatever_its_name(source, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no such file or folder here
    assert user._source_kind(source) == kind


def test_a_missing_checkpoint_is_named_as_a_file(tmp_path):
    with pytest.raises(user.InvalidRequest, match="no such file"):
        user._source_kind(str(tmp_path / "owner" / "model.safetensors"))


def test_a_failed_int8_step_keeps_the_fp16_export_served(models_dir, tmp_path, inputs,
                                                         monkeypatch):
    """The INT8 step after a finished FP16 export fails (out of memory, say): the FP16 export
    stays, its entry is written, the model serves, and the message says what failed and how
    to try the step again."""
    import export

    def fails(*args, **kwargs):
        raise MemoryError("calibration ran out of memory")

    monkeypatch.setattr(export, "export_model", fails)
    folder = tmp_path / "models"
    with pytest.raises(user.VariantFailed) as failed:
        user.add("kept", str(inputs["source"]), folder, variant="int8")
    message = str(failed.value)
    assert "served in FP16" in message and "calibration ran out of memory" in message
    assert "python -m export kept --variant int8" in message
    registry = Registry(folder, cache=False)
    assert "kept" in registry.catalogue and registry.is_exported("kept", "fp16")
    assert image(registry, "kept").shape == (256, 256, 3)
