"""A Space start as the hosted Space makes one (conftest's `space`: the serving-only install,
SPACE_ID set, an empty models folder, the Hugging Face cache holding README's preload_from_hub
repos laid out as they are on the Hub). The page shows no warning and no stand-in build, offers
only tabs that work, and serves real images from the preloaded model with its TAESD; the
browser's view of it is tests/browser/test_space_page.py."""

import time

import httpx
from gradio_client import Client
from PIL import Image


def page_texts(url: str) -> tuple[list[str], list[str]]:
    """The page's Markdown texts and its tabs' labels, from gradio's config."""
    components = httpx.get(url + "config", timeout=10).json()["components"]
    texts = [c["props"].get("value") or "" for c in components if c["type"] == "markdown"]
    tabs = [c["props"].get("label") for c in components if c["type"] == "tabitem"]
    return [t for t in texts if isinstance(t, str)], tabs


def test_the_page_has_no_warning_and_only_tabs_that_work(space):
    url, log, root = space
    texts, tabs = page_texts(url)
    assert not [t for t in texts if "⚠" in t or "python -m export" in t], texts
    assert {"Text-to-Image", "Image-to-Image", "Inpaint", "Live"} <= set(tabs)
    # No Segmind-Vega and no FP16 on this Space: neither tab shows, and nothing is built.
    assert "Segmind-VegaRT" not in tabs and "FP16 vs INT8" not in tabs
    status = next(t for t in texts if t.startswith("Serving"))
    assert "SDXL-Turbo" in status and "INT8 weights and activations" in status
    assert not (root / "models" / "tiny").exists() and "stand-in" not in log.read_text()


def test_text_to_image_serves_the_preloaded_model_with_its_taesd(space):
    url, _, root = space
    client = Client(url, verbose=False)
    path, seed, info, _ = client.predict("a red fox", 5, False, 1, 256, 256, "int8",
                                         api_name="/text_to_image")
    assert Image.open(path).size == (256, 256) and seed == 5
    assert "TAESD" in info, info
    views = root / "models" / ".hub-views"
    assert (views / "rupeshs--sdxl-turbo-openvino-int8").is_dir()
    assert (views / "rupeshs--taesdxl-openvino").is_dir()


def test_the_preload_warmed_the_opening_model(space):
    _, log, _ = space
    end = time.monotonic() + 120
    while "Preloaded sdxl-turbo (int8)" not in log.read_text():
        assert time.monotonic() < end and "Preloading" not in log.read_text(), \
            log.read_text()[-3000:]
        time.sleep(0.5)
