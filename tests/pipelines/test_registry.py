"""Registry: RAM budget with least-recently-used eviction, and damaged model folders."""

import shutil

import numpy as np
import pytest

from pipelines import catalogue, compiled_store, generate, settings
from pipelines.compiled import Shape
from pipelines.errors import InvalidSetting
from pipelines.registry import ModelNotAvailable, Registry, ram_estimate, unet_shape
from pipelines.requests import Text2Image, validate
from ui import header


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


def test_an_evicted_model_saves_nothing_more(two_models):
    # Its parts would be saved once the model is idle for 2 s; unloaded before that, the saver
    # ends rather than keep them in memory for the export.
    one_model = ram_estimate(two_models / "tiny" / "fp16")
    registry = Registry(two_models, ram_budget=int(one_model * 1.5))
    tiny = registry.get("tiny", "fp16")
    picture(tiny, "tiny")
    registry.get("sdxl-turbo", "fp16")  # evicts tiny first
    tiny.parts.wait_saved()
    assert not compiled_store.saved(two_models / ".ov-cache")


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


def test_a_load_error_without_a_message_still_says_what_failed(two_models, monkeypatch):
    def fail(*args):
        raise RuntimeError()  # OpenVINO and optimum raise some with no message

    monkeypatch.setattr(Registry, "_compile", fail)
    with pytest.raises(ModelNotAvailable, match=r"could not be loaded \(RuntimeError\)\. .*"
                                                r"export it again"):
        Registry(two_models).get("tiny", "fp16")


@pytest.mark.parametrize("budget", [0, -2**30])
def test_a_ram_budget_of_zero_or_less_is_refused(models_dir, budget):
    with pytest.raises(InvalidSetting, match="more than 0"):
        Registry(models_dir, ram_budget=budget)


def test_settings_reach_the_registry(models_dir):
    chosen = settings.Settings(models_dir=models_dir, precision="f32", ram_budget_gb=2.5,
                               ov_cache=False, static_shapes=True)
    registry = Registry.from_settings(chosen)
    assert (registry.models_dir, registry.precision, registry.ram_budget, registry.cache_dir,
            registry.static_shapes) == (models_dir, "f32", int(2.5 * 2**30), None, True)


def test_the_registry_reads_no_turbo_variables(monkeypatch, tmp_path):
    for name, value in dict(TURBO_PRECISION="int4", TURBO_RAM_BUDGET_GB="-1",
                            TURBO_OV_CACHE="0", TURBO_STATIC_SHAPES="1",
                            TURBO_MODELS_DIR=str(tmp_path)).items():
        monkeypatch.setenv(name, value)
    registry = Registry()
    assert registry.models_dir == settings.Settings().models_dir != tmp_path
    assert registry.precision == "auto" and registry.ram_budget > 0
    assert registry.cache_dir is not None and not registry.static_shapes


def test_what_is_served_and_from_where(models_dir, tmp_path):
    registry = Registry(models_dir, hub_cache=tmp_path / "hf-cache")
    assert registry.offered_variants("tiny") == ["fp16", "int8"]
    assert registry.offered_variants("sdxl-turbo") == []
    # Nothing real is exported: the stand-ins of the candidates serve.
    assert registry.served(("sdxl-turbo", "sdxl-base")) == ["tiny", "tiny-base"]
    assert registry.served(("segmind-vegart",)) == ["tiny-vega"]
    assert header.served_from(registry, "tiny") == f"`{models_dir / 'tiny'}`"
    empty = Registry(tmp_path / "empty", hub_cache=tmp_path / "hf-cache")
    # Nothing here at all: the stand-ins serve, which a first start builds; asking made none.
    assert empty.served(("sdxl-turbo", "sdxl-base")) == ["tiny", "tiny-base"]
    assert not (tmp_path / "empty").exists()


def test_the_unet_batch_doubles_only_where_guidance_runs():
    turbo, base = catalogue.get("sdxl-turbo"), catalogue.get("sdxl-base")
    assert unet_shape(turbo, 512, 384, 0.0) == Shape(1, 384, 512)
    assert unet_shape(base, 1024, 1024, 7.0) == Shape(2, 1024, 1024)
    assert unet_shape(base, 1024, 1024, 1.0) == Shape(1, 1024, 1024)


def test_loading_a_local_folder_prints_no_hub_lookup(models_dir, capfd, caplog):
    """Offline (HF_HUB_OFFLINE, set for every test), optimum-intel's from_pretrained took a local
    folder's path for a Hub repo id and printed a warning and an [Errno 2] line about
    '<HF cache>/models----<path>/refs/main' on every load, though the folder loads fine."""
    caplog.set_level("DEBUG")
    Registry(models_dir, cache=False).get("tiny", "fp16")
    out, err = capfd.readouterr()
    console = out + err + caplog.text
    assert "Could not infer whether the model was already converted" not in console
    assert "refs/main" not in console and "Errno 2" not in console
