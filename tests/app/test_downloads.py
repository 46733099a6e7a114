"""The PNG a user downloads carries its generation settings; the session gallery."""

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from pipelines import pngmeta
from ui import examples
from ui.results import GALLERY_SIZE, add_to_gallery, png_file


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def test_the_text_to_image_png_carries_its_settings(client):
    path, _, _, _ = client.predict("a lighthouse at dawn", 21, False, 2, 384, 256, "int8", True,
                                   api_name="/text_to_image")
    chunks = pngmeta.read(path)
    assert Image.open(path).size == (384, 256)
    assert {key: chunks[key] for key in ("prompt", "seed", "steps", "width", "height", "model",
                                         "variant", "decoder")} == {
        "prompt": "a lighthouse at dawn", "seed": "21", "steps": "2", "width": "384",
        "height": "256", "model": "tiny", "variant": "int8", "decoder": "Tiny TAESD stand-in"}
    assert "Seed: 21" in chunks["parameters"] and "Size: 384x256" in chunks["parameters"]


def test_a_random_seed_is_recorded_as_the_seed_used(client):
    path, seed, _, _ = client.predict("a lighthouse", 0, True, 1, 256, 256,
                                   api_name="/text_to_image")
    assert pngmeta.read(path)["seed"] == str(seed)


def test_the_image_to_image_png_records_the_strength_and_raised_steps(client):
    path, _, _, _ = client.predict(handle_file(str(examples.IMAGE)), "a castle", 0.5, 1, 4,
                                False, api_name="/image_to_image")
    chunks = pngmeta.read(path)
    assert (chunks["strength"], chunks["steps"], chunks["seed"]) == ("0.5", "2", "4")


def test_the_gallery_adds_the_newest_image_first_and_stays_bounded():
    def image(seed):
        picture = Image.new("RGB", (8, 8), (seed, 0, 0))
        picture.info["seed"] = str(seed)
        return png_file(picture)

    gallery = None
    for seed in range(GALLERY_SIZE + 3):
        gallery = add_to_gallery(image(seed), gallery)
    assert len(gallery) == GALLERY_SIZE
    newest, caption = gallery[0]
    assert caption == f"seed {GALLERY_SIZE + 2}"
    assert np.asarray(Image.open(newest))[0, 0, 0] == GALLERY_SIZE + 2
