"""An online first start with nothing real exported offers the catalogue's public
pre-exported models, with their download size, opens on SDXL-Turbo and downloads it on first
use; an unreachable Hub falls back to the stand-ins with one line saying why. The Hub is
tests/hubfake.py's, holding the public layouts (tests/publichub.py)."""

import shutil

import httpx
import pytest
from gradio_client import Client
from PIL import Image

from pipelines import catalogue
from pipelines.registry import Registry
from tests.hubfake import FakeHub
from ui.compare import missing_note
from ui.demo import LAUNCH_OPTIONS, MAIN_MODELS, build_demo, offer_real_models
from ui.live import missing_decoder

TURBO = catalogue.get("sdxl-turbo").hub_exports["int8"]
TAESD = catalogue.AUTOENCODERS["taesdxl"].hub_export


@pytest.fixture
def online(monkeypatch, tmp_path, models_dir, public_repos):
    """The fake Hub with the catalogue's public repos, reachable (HF_HUB_OFFLINE=0), and a
    models folder holding only the stand-ins (so no stand-in build starts)."""
    hub = FakeHub(tmp_path / "hub")
    for repo in catalogue.hub_repos():
        shutil.copytree(public_repos[repo], hub.root / repo)
    monkeypatch.setattr("huggingface_hub.snapshot_download", hub.snapshot_download)
    monkeypatch.setattr("huggingface_hub.model_info", hub.model_info)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    models = tmp_path / "models"
    models.mkdir()
    for stand_in in models_dir.iterdir():
        if stand_in.name.startswith("tiny"):
            (models / stand_in.name).symlink_to(stand_in)
    return hub, Registry(models, hub_cache=tmp_path / "hf-cache")


def launch(registry, reason):
    demo = build_demo(registry, offline_reason=reason)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **LAUNCH_OPTIONS)
    return demo


def page_text(url: str) -> str:
    components = httpx.get(url + "config", timeout=30).json()["components"]
    return " ".join(str(c.get("props", {}).get("value", "")) for c in components)


def test_the_real_models_are_offered_and_download_on_first_use(online):
    hub, registry = online
    assert offer_real_models(registry) is None
    assert registry.served(MAIN_MODELS)[0] == "sdxl-turbo"
    size = sum(f.stat().st_size for f in (hub.root / TURBO).rglob("*") if f.is_file())
    assert registry.download_size("sdxl-turbo", "int8") == size
    demo = launch(registry, None)
    try:
        text = page_text(demo.local_url)
        assert "downloads" in text and "on first use" in text
        assert "serves the Tiny stand-in" not in text  # it opens on SDXL-Turbo
        assert not any(call[0] == "snapshot_download" and not call[2] for call in hub.calls)
        path, *_ = Client(demo.local_url, verbose=False).predict(
            "a red fox", 3, False, 1, 256, 256, "int8", api_name="/text_to_image")
        assert Image.open(path).size == (256, 256)
    finally:
        demo.close()
    fetched = {call[1] for call in hub.calls if call[0] == "snapshot_download" and not call[2]}
    assert fetched == {TURBO, TAESD}  # the model and its fast decoder, nothing else
    assert registry.download_size("sdxl-turbo", "int8") is None  # here now
    assert registry.autoencoder_for(catalogue.get("sdxl-turbo"), "int8") is not None


def test_an_unreachable_hub_falls_back_to_the_stand_ins_saying_why(online):
    hub, registry = online
    hub.fail_with = ConnectionError("Name or service not known")
    reason = offer_real_models(registry)
    assert "did not answer" in reason and "Name or service not known" in reason
    assert registry.served(MAIN_MODELS)[0] == "tiny"
    assert len([call for call in hub.calls if call[0] == "model_info"]) == 1  # asked once
    demo = launch(registry, reason)
    try:
        text = page_text(demo.local_url)
        assert "serves the Tiny stand-in" in text
        assert f"The real models were not offered for download: {reason}." in text
    finally:
        demo.close()


def test_offline_nothing_is_asked(online, monkeypatch):
    hub, registry = online
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert offer_real_models(registry) is None
    assert hub.calls == [] and registry.served(MAIN_MODELS)[0] == "tiny"


def test_the_tabs_say_what_downloads_not_what_to_export(online):
    """Before the first image, FP16 vs INT8 and Live say the offered INT8 downloads on first
    use (with its Tiny Autoencoder) and give an export command only for what has no repo."""
    hub, registry = online
    offer_real_models(registry)
    note = missing_note(registry, "sdxl-turbo")
    assert "downloads" in note and "first comparison" in note
    assert catalogue.export_command("sdxl-turbo", "fp16") in note
    assert catalogue.export_command("sdxl-turbo", "int8") not in note
    live = missing_decoder(registry, "sdxl-turbo", "int8")
    assert "downloads" in live and "Tiny Autoencoder" in live
    assert "python -m export" not in live
