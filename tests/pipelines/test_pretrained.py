"""Pre-exported models from the Hub: models folder → Hugging Face cache → download → a clear
error, offline-aware. No network: tests/hubfake.py stands in for the Hub."""

import dataclasses
import shutil

import numpy as np
import pytest

from ui import header
from ui.running import download_bar
from pipelines import catalogue, generate
from pipelines.registry import ModelNotAvailable, Registry
from pipelines.requests import Text2Image, validate
from tests.hubfake import FakeHub, put_in_cache

REPO = "someone/tiny-openvino"


@pytest.fixture
def hub(monkeypatch, tmp_path, models_dir):
    """The tiny stand-in's FP16 folder published as REPO, and named in the catalogue."""
    fake = FakeHub(tmp_path / "hub")
    shutil.copytree(models_dir / "tiny" / "fp16", fake.root / REPO)
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake.snapshot_download)
    tiny = catalogue.MODELS["tiny"]
    monkeypatch.setitem(catalogue.MODELS, "tiny",
                        dataclasses.replace(tiny, hub_exports={"fp16": REPO}))
    return fake


@pytest.fixture
def empty(tmp_path):
    """A registry with nothing exported and an empty Hugging Face cache."""
    (tmp_path / "models").mkdir()
    return Registry(tmp_path / "models", hub_cache=tmp_path / "hf-cache")


def test_a_preloaded_repo_is_served_offline(hub, empty, models_dir, monkeypatch, loaded):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = put_in_cache(empty.hub_cache, REPO, models_dir / "tiny" / "fp16")
    assert empty.available("tiny", "fp16") and ("tiny", "fp16") in empty.available_pairs()
    assert not empty.available("tiny", "int8")
    model = empty.get("tiny", "fp16")
    assert model.folder == snapshot
    request = validate(Text2Image("a red fox", model_id="tiny", seed=9, width=256, height=256,
                                  fast_decoder=False))  # TAESD is not in this models folder
    image = generate.run(model, request).image
    assert np.array_equal(np.asarray(image), np.asarray(generate.run(loaded, request).image))
    assert all(local for _, _, local in hub.calls)  # nothing was downloaded


def test_a_missing_model_is_downloaded_into_the_cache(hub, empty, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not empty.available("tiny", "fp16")
    model = empty.get("tiny", "fp16")
    assert ("snapshot_download", REPO, False) in hub.calls
    assert model.folder.is_relative_to(empty.hub_cache)
    assert empty.available("tiny", "fp16")  # found in the cache from now on
    assert not (empty.models_dir / "tiny").exists()


def test_offline_without_the_repo_in_the_cache_says_what_to_do(hub, empty, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailable) as refused:
        empty.get("tiny", "fp16")
    message = str(refused.value)
    assert REPO in message and "HF_HUB_OFFLINE" in message and "python -m export tiny" in message
    assert ("snapshot_download", REPO, False) not in hub.calls


def test_a_failed_download_is_a_clear_error(hub, empty, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub.fail_with = ConnectionError("connection refused")
    with pytest.raises(ModelNotAvailable, match=f"downloading {REPO} failed.*connection refused"
                                                ".*python -m export tiny"):
        empty.get("tiny", "fp16")


def test_the_local_models_folder_comes_first(hub, registry, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert registry.location("tiny", "fp16") == registry.folder("tiny", "fp16")
    registry.get("tiny", "fp16")
    assert hub.calls == []


@pytest.fixture
def preloaded_turbo(tmp_path):
    """What a Space's preload_from_hub leaves: SDXL-Turbo's INT8 repo in the HF cache (only its
    model_index.json here), nothing in the models folder."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "model_index.json").write_text("{}")
    repo = catalogue.get("sdxl-turbo").hub_exports["int8"]
    put_in_cache(tmp_path / "hf-cache", repo, source)
    return Registry(tmp_path / "models", hub_cache=tmp_path / "hf-cache"), repo


def test_a_space_serves_the_preloaded_real_model(preloaded_turbo, tmp_path):
    """The app serves the preloaded model: no stand-in export at start."""
    registry, _ = preloaded_turbo
    assert registry.served(("sdxl-turbo", "sdxl-base"))[0] == "sdxl-turbo"
    assert registry.offered_variants("sdxl-turbo") == ["int8"]
    assert not (tmp_path / "models").exists()


def test_hub_exports_name_catalogue_variants():
    for spec in catalogue.MODELS.values():
        assert set(spec.hub_exports) <= set(spec.variants)
        assert all(repo.count("/") == 1 for repo in spec.hub_exports.values())


def test_the_header_says_a_preloaded_model_comes_from_the_hf_cache(preloaded_turbo):
    registry, repo = preloaded_turbo
    assert header.served_from(registry, "sdxl-turbo") == f"the Hugging Face cache (`{repo}`)"


def test_the_download_reports_progress_to_the_user(hub, empty, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    reports = []
    empty.get("tiny", "fp16", download_progress=download_bar(
        lambda fraction, desc, unit: reports.append((fraction, desc))))
    files = sum(1 for f in (hub.root / REPO).rglob("*") if f.is_file())
    assert reports[-1] == ((files, files), "Downloading the model")
    assert len(reports) == files


def test_a_download_blocks_only_its_own_model(hub, empty, models_dir, monkeypatch):
    """While SDXL-Turbo's stand-in downloads (held here), another model loads and the
    registry answers; two first requests for the downloading model fetch it once."""
    import threading

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    (empty.models_dir / "tiny-vega").symlink_to(models_dir / "tiny-vega")
    started, release = threading.Event(), threading.Event()
    real = hub.snapshot_download

    def slow(repo_id, **kwargs):
        if not kwargs.get("local_files_only"):
            started.set()
            release.wait(timeout=60)
        return real(repo_id, **kwargs)

    monkeypatch.setattr("huggingface_hub.snapshot_download", slow)
    got = []
    downloads = [threading.Thread(target=lambda: got.append(empty.get("tiny", "fp16")))
                 for _ in range(2)]
    for thread in downloads:
        thread.start()
    assert started.wait(timeout=60)
    try:
        assert empty.get("tiny-vega", "fp16").spec.id == "tiny-vega"  # not behind the download
        assert empty.loaded() == [("tiny-vega", "fp16")]
    finally:
        release.set()
        for thread in downloads:
            thread.join(timeout=120)
    assert len(got) == 2 and got[0] is got[1]
    assert [c for c in hub.calls if c[0] == "snapshot_download" and not c[2]] == [
        ("snapshot_download", REPO, False)]  # fetched once
