"""The Inpaint tab's endpoint, driven through gradio_client as an API user would, and the image
editor's value as the page sends it."""

import io

import numpy as np
import pytest
from gradio.components.image_editor import EditorData, EditorDataBlobs
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

from ui import examples
from ui.running import inpaint_request
from ui.widgets import mask_editor

EXAMPLE = str(examples.IMAGE)  # 512²: the model's size, so nothing is cropped
BOX = (96, 64, 288, 256)
SECOND = (320, 320, 447, 447)


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def layer(size=(512, 512), box=BOX, mode="RGBA") -> Image.Image:
    """A mask layer as the editor paints it: opaque brush strokes on a transparent layer (or,
    mode "L", a black-and-white mask)."""
    image = Image.new(mode, size, (0, 0, 0, 0) if mode == "RGBA" else 0)
    if box:
        ImageDraw.Draw(image).rectangle(box, fill=(255, 255, 255, 255) if mode == "RGBA" else 255)
    return image


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inpaint")

    def save(name, image):
        image.save(folder / name)
        return str(folder / name)

    return dict(layer=save("layer.png", layer()), bw=save("bw.png", layer(mode="L")),
                second=save("second.png", layer(box=SECOND)),
                empty=save("empty.png", layer(box=None)),
                full=save("full.png", layer(box=(0, 0, 511, 511))),
                small=save("small.png", layer(size=(256, 256), box=(0, 0, 99, 99))),
                text=__file__)


def editor(background=EXAMPLE, *layers):
    return {"background": handle_file(background) if background else None,
            "layers": [handle_file(path) for path in layers], "composite": None}


def inpaint(client, value, prompt="a full moon", strength=1.0, steps=2, seed=3, randomize=False):
    return client.predict(value, prompt, strength, steps, seed, randomize, api_name="/inpaint")


def painted(*boxes) -> np.ndarray:
    """Where the layers with these boxes are painted, as booleans over the 512² image."""
    inside = np.zeros((512, 512), bool)
    for left, top, right, bottom in boxes:
        inside[top:bottom + 1, left:right + 1] = True
    return inside


def split(path, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image's pixels outside the painted region and inside it."""
    pixels = np.asarray(Image.open(path).convert("RGB"))
    return pixels[~inside], pixels[inside]


def assert_only_repainted(path, *boxes):
    """Outside the boxes exactly the source's pixels; inside nearly every one changed."""
    outside, inside = split(path, painted(*boxes))
    source_outside, source_inside = split(EXAMPLE, painted(*boxes))
    assert np.array_equal(outside, source_outside)
    assert (inside != source_inside).any(axis=1).mean() > 0.9
    for box in boxes:  # each region, not just the two together
        in_box, source_in_box = split(path, painted(box))[1], split(EXAMPLE, painted(box))[1]
        assert (in_box != source_in_box).any(axis=1).mean() > 0.9


def test_only_the_painted_region_changes(client, files):
    path, seed, info, _ = inpaint(client, editor(EXAMPLE, files["layer"]))
    assert Image.open(path).size == (512, 512) and seed == 3 and "VAE encoder" in info
    assert_only_repainted(path, BOX)


def test_same_seed_same_bytes_and_a_black_and_white_mask_is_the_same_mask(client, files):
    first = inpaint(client, editor(EXAMPLE, files["layer"]))[0]
    again = inpaint(client, editor(EXAMPLE, files["bw"]))[0]
    assert Image.open(first).tobytes() == Image.open(again).tobytes()
    other = inpaint(client, editor(EXAMPLE, files["layer"]), seed=4)[0]
    assert Image.open(first).tobytes() != Image.open(other).tobytes()


def test_layers_add_up(client, files):
    path, _, _, _ = inpaint(client, editor(EXAMPLE, files["layer"], files["second"]))
    assert_only_repainted(path, BOX, SECOND)


@pytest.mark.parametrize("value, message", [
    (lambda f: editor(EXAMPLE), "Please paint the region to change"),
    (lambda f: editor(EXAMPLE, f["empty"]), "The mask covers nothing"),
    (lambda f: editor(EXAMPLE, f["full"]), "The mask covers the whole image"),
    (lambda f: editor(EXAMPLE, f["small"]), "The mask is 256×256 pixels and the image 512×512"),
    (lambda f: editor(None, f["layer"]), "Please upload an image"),
    (lambda f: editor(f["text"], f["layer"]), "not an image"),
    (lambda f: editor(EXAMPLE, f["text"]), "not an image"),
])
def test_bad_input_gets_a_clear_error_and_the_server_goes_on(client, files, value, message):
    with pytest.raises(AppError, match=message):
        inpaint(client, value(files))
    assert Image.open(inpaint(client, editor(EXAMPLE, files["layer"]))[0]).size == (512, 512)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_page_s_edits_arrive_as_the_painted_mask():
    """The page sends blobs, which gr.ImageEditor saves as files first: the layer's alpha (the
    brush strokes) must survive that, so the request's mask is what was painted."""
    component = mask_editor()
    source = Image.open(EXAMPLE).convert("RGB")
    component.blob_storage["page"] = EditorDataBlobs(
        background=png(source), layers=[png(layer())], composite=png(source))
    value = component.preprocess(EditorData(id="page"))
    request = inpaint_request(value, prompt="a full moon")
    assert request.image.tobytes() == source.tobytes()
    assert request.mask.getbbox() == (BOX[0], BOX[1], BOX[2] + 1, BOX[3] + 1)
    assert set(request.mask.getdata()) == {0, 255}
