"""`python -m pipelines` as a user runs it: a subprocess on the tiny stand-in."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines import generate, pngmeta
from pipelines.requests import Text2Image, validate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "assets" / "examples" / "dusk-hills.png"


def cli(*args, cwd=ROOT, **env):
    return subprocess.run([sys.executable, "-m", "pipelines", *map(str, args)], cwd=cwd,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


def test_generate_writes_a_png_with_its_settings(tmp_path, loaded, models_dir):
    out = tmp_path / "fox.png"
    done = cli("generate", "a red fox", "--model", "tiny", "--steps", "2", "--seed", "42",
               "--width", "320", "--height", "256", "-o", out, "--models-dir", models_dir)
    assert done.returncode == 0, done.stderr
    assert "seed 42" in done.stdout and str(out) in done.stdout
    image = Image.open(out)
    assert image.format == "PNG" and image.size == (320, 256)
    chunks = pngmeta.read(out)
    assert {key: chunks[key] for key in ("prompt", "seed", "steps", "width", "height", "model",
                                         "variant", "decoder")} == {
        "prompt": "a red fox", "seed": "42", "steps": "2", "width": "320", "height": "256",
        "model": "tiny", "variant": "fp16", "decoder": "Tiny TAESD stand-in"}
    assert chunks["parameters"].startswith("a red fox\nSteps: 2, CFG scale: 0, Seed: 42, "
                                           "Size: 320x256")
    # The same seed and settings in this process give the same pixels.
    request = validate(Text2Image("a red fox", model_id="tiny", steps=2, seed=42, width=320,
                                  height=256))
    again = generate.run(loaded, request).image
    assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(again))


def test_image_to_image_with_the_full_decoder(tmp_path, models_dir):
    out = tmp_path / "castle.png"
    done = cli("generate", "a castle", "--model", "tiny", "--image", EXAMPLE, "--strength",
               "0.5", "--steps", "2", "--seed", "7", "--no-fast-decoder", "-o", out,
               "--models-dir", models_dir)
    assert done.returncode == 0, done.stderr
    chunks = pngmeta.read(out)
    assert Image.open(out).size == (512, 512)
    assert (chunks["strength"], chunks["decoder"], chunks["seed"]) == ("0.5", "full VAE", "7")
    assert "Denoising strength: 0.5" in chunks["parameters"]


def test_a_batch_writes_one_png_per_seed(tmp_path, loaded, models_dir):
    done = cli("generate", "a red fox", "--model", "tiny", "--steps", "1", "--seed", "8", "-n",
               "3", "--width", "256", "--height", "256", "-o", tmp_path / "fox.png",
               "--models-dir", models_dir)
    assert done.returncode == 0, done.stderr
    written = {seed: tmp_path / f"fox-{seed}.png" for seed in (8, 9, 10)}
    assert sorted(tmp_path.iterdir()) == sorted(written.values())
    for seed, path in written.items():
        assert pngmeta.read(path)["seed"] == str(seed)
    alone = generate.run(loaded, validate(Text2Image("a red fox", model_id="tiny", steps=1,
                                                     seed=9, width=256, height=256))).image
    assert np.array_equal(np.asarray(Image.open(written[9]).convert("RGB")), np.asarray(alone))


@pytest.mark.parametrize("args, message", [
    (["generate", "", "--model", "tiny"], "Please enter a prompt"),
    (["generate", "a fox", "--model", "tiny", "-n", "5"], "Images must be between 1 and 4"),
    (["generate", "a fox", "--model", "tiny", "--width", "500"], "multiple of 64"),
    (["generate", "a fox", "--model", "tiny", "--variant", "int4"], "no variant 'int4'"),
    (["generate", "a fox", "--model", "tiny", "--image", __file__], "not an image"),
    (["generate", "a fox", "--model", "tiny", "--strength", "0.5"], "give --image"),
    (["generate", "a fox", "--model", "tiny", "-o", "/no/such/folder/x.png"], "not a folder"),
    (["generate", "a fox", "--model", "tiny", "--device", "QPU"], "OpenVINO sees no QPU device"),
])
def test_bad_input_exits_2_with_a_message(args, message):
    done = cli(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_model_not_exported_says_how_to_get_it(tmp_path):
    done = cli("generate", "a fox", "--model", "tiny", "--models-dir", tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "python -m export tiny" in done.stderr


def test_list_shows_models_variants_what_is_exported_and_sizes(models_dir):
    done = cli("list", TURBO_MODELS_DIR=str(models_dir))  # no --models-dir: the variable
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"models folder: {models_dir}" in lines
    tiny = lines.index("tiny: Tiny stand-in (built locally)")
    assert lines[tiny + 1].split()[:2] == ["fp16", "exported,"] and "MB in" in lines[tiny + 1]
    assert lines[tiny + 2].split()[:2] == ["int8", "exported,"]
    assert any("sdxl-turbo --variant int8" in line for line in lines)
    assert any(line.strip().startswith("tiny-taesd: exported") for line in lines)


def test_the_cli_generates_on_a_worker_thread_and_keeps_its_errors():
    """The CLI runs generations off the main thread (1.7x faster there on the AVX2 EPYC): the
    result comes back, and an error is raised on the main thread as it was."""
    import threading

    from pipelines.threads import on_a_worker_thread
    from pipelines.errors import UserError

    assert on_a_worker_thread(lambda: threading.current_thread().name) == "generate"

    def fails():
        raise UserError("a message for the user")

    with pytest.raises(UserError, match="a message for the user"):
        on_a_worker_thread(fails)
