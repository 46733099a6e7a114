"""Registry: RAM budget with least-recently-used eviction, and damaged model folders."""

import shutil

import numpy as np
import pytest

from pipelines import generate
from pipelines.registry import ModelNotAvailable, Registry, ram_estimate
from pipelines.requests import Text2Image, validate


@pytest.fixture
def two_models(models_dir, tmp_path):
    """A models folder where the stand-in also stands in for sdxl-turbo: two loadable models."""
    for model in ("tiny", "sdxl-turbo"):
        shutil.copytree(models_dir / "tiny" / "fp16", tmp_path / model / "fp16")
    return tmp_path


def picture(loaded, model_id):
    request = validate(Text2Image("a cat", model_id=model_id, seed=1, width=256, height=256))
    return np.asarray(generate.run(loaded, request).image)


def test_least_recently_used_model_is_evicted_to_stay_in_budget(two_models):
    one_model = ram_estimate(two_models / "tiny" / "fp16")
    registry = Registry(two_models, ram_budget=int(one_model * 1.5))
    tiny = registry.get("tiny", "fp16")
    first = picture(tiny, "tiny")
    turbo = registry.get("sdxl-turbo", "fp16")
    assert registry.loaded() == [("sdxl-turbo", "fp16")]
    assert picture(turbo, "sdxl-turbo").shape == (256, 256, 3)
    again = registry.get("tiny", "fp16")  # loaded anew, evicting sdxl-turbo
    assert again is not tiny and registry.loaded() == [("tiny", "fp16")]
    assert np.array_equal(picture(again, "tiny"), first)


def test_both_stay_when_the_budget_holds_both(two_models):
    registry = Registry(two_models, ram_budget=10 * ram_estimate(two_models / "tiny" / "fp16"))
    registry.get("tiny", "fp16")
    registry.get("sdxl-turbo", "fp16")
    registry.get("tiny", "fp16")
    assert registry.loaded() == [("sdxl-turbo", "fp16"), ("tiny", "fp16")]


def test_a_model_larger_than_the_budget_is_refused_with_numbers(two_models):
    registry = Registry(two_models, ram_budget=1000)
    with pytest.raises(ModelNotAvailable, match="needs about .* GB of RAM; the budget is"):
        registry.get("tiny", "fp16")
    assert registry.loaded() == []


@pytest.mark.parametrize("damage", [
    lambda folder: (folder / "unet" / "openvino_model.bin").unlink(),
    lambda folder: (folder / "unet" / "openvino_model.xml").write_text("<net><broken"),
    lambda folder: (folder / "vae_decoder" / "openvino_model.bin").write_bytes(b"\0" * 100),
])
def test_damaged_folder_says_so_and_nothing_is_written(two_models, damage):
    folder = two_models / "tiny" / "fp16"
    damage(folder)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    registry = Registry(two_models)
    with pytest.raises(ModelNotAvailable, match="could not be loaded.*export it again"):
        registry.get("tiny", "fp16")
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before
    assert picture(registry.get("sdxl-turbo", "fp16"), "sdxl-turbo").shape == (256, 256, 3)
