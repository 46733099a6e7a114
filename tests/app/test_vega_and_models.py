"""The Segmind-VegaRT tab and the model choice of the main tabs, through gradio_client."""

import gradio as gr
import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from pipelines import catalogue
from ui import examples
from ui.demo import MAIN_MODELS
from ui.generation import model_settings
from ui.results import add_to_gallery, png_file

EXAMPLE = str(examples.IMAGE)


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def vega_text_to_image(client, steps=3, seed=4, negative="", guidance=1.0):
    return client.submit("a red fox", negative, steps, guidance, 512, 512, seed, False, "fp16",
                         True, api_name="/vega_text_to_image")


def test_vega_tab_streams_previews_then_the_image(client):
    job = vega_text_to_image(client)
    outputs = [output for output in job]  # every yield, as the page receives them
    final_path, seed, info, _ = job.result()
    # 3 steps: the first step's preview, the second's if it kept up, then the image.
    assert len(outputs) in (2, 3) and seed == 4 and "in all" in info
    assert Image.open(final_path).size == (512, 512)
    again, _, _, _ = vega_text_to_image(client).result()
    assert np.array_equal(pixels(final_path), pixels(again))


def test_vega_image_to_image_takes_a_size(client):
    path, _, info, _ = client.predict(handle_file(EXAMPLE), "a castle", "", 0.5, 4, 1.0, 512, 2,
                                   False, "fp16", True, api_name="/vega_image_to_image")
    assert Image.open(path).size == (512, 512) and "VAE encoder" in info


def test_vega_tab_says_it_serves_the_stand_in(app_url):
    config = httpx.get(f"{app_url}config", timeout=30).json()
    texts = " ".join(str(c.get("props", {}).get("value", "")) for c in config["components"])
    assert "serves the Tiny Vega stand-in" in texts
    assert "python -m export segmind-vegart" in texts


def test_stop_with_nothing_running_is_harmless(client):
    client.predict(api_name="/vega_stop")
    path, _, _, _ = vega_text_to_image(client, steps=2).result()
    assert Image.open(path).size == (512, 512)


def test_the_main_tabs_offer_sdxl_base_with_its_settings(client, registry):
    assert registry.served(MAIN_MODELS) == ["tiny", "tiny-base"]
    steps, guidance, negative, width, _, variant, _ = model_settings(
        registry, "tiny-base", "text2image")
    spec = catalogue.get("tiny-base")
    assert (steps["minimum"], steps["maximum"], steps["value"]) == (20, 50, 25)
    assert guidance["value"] == spec.guidance.default and guidance["visible"]
    assert negative["visible"] and width["value"] == spec.size.default
    assert variant["choices"] == ["fp16"]
    path, _, info, _ = client.predict("a red fox", 3, False, 20, 512, 512, "fp16", True,
                                   "tiny-base", 7.0, "blurry", api_name="/text_to_image")
    assert Image.open(path).size == (512, 512) and "in all" in info


def test_sdxl_turbo_settings_hide_guidance_and_the_negative_prompt(registry):
    _, guidance, negative, *_ = model_settings(registry, "tiny", "image2image")
    assert not guidance["visible"] and not negative["visible"]


def test_previews_stay_out_of_the_session_gallery():
    preview = Image.new("RGB", (8, 8))  # a preview carries no settings; a result has its seed
    assert add_to_gallery(png_file(preview), None) == gr.skip()
