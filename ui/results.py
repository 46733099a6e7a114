"""The result column every generation tab shows: the image (a PNG download that carries its
settings), the seed used, the timings, every image of a batch, and this session's gallery."""

import os
import uuid
from pathlib import Path

import gradio as gr
from gradio import processing_utils
from gradio.utils import get_upload_folder
from PIL import Image

GALLERY_SIZE = 24  # newest first; older images drop off


def result_outputs() -> tuple[gr.Image, gr.Number, gr.Markdown, gr.Gallery]:
    # PNG keeps the settings pngmeta.tag put in the image's info (gradio copies text info).
    # Outputs are not upload targets: interactive=False.
    # type="filepath": the session gallery is handed the file the page shows, never a new save
    # of it (see png_file).
    image = gr.Image(label="Result", type="filepath", format="png", height=512,
                     interactive=False)
    seed_used = gr.Number(label="Seed used", precision=0, interactive=False)
    info = gr.Markdown()
    batch = gr.Gallery(label="Images of this run (the seed under each makes it again alone)",
                       format="png", columns=4, height=220, preview=False, interactive=False,
                       visible=False, elem_classes=["batch-gallery"])
    session_gallery(image)
    return image, seed_used, info, batch


def show_batch(images: gr.Slider, batch: gr.Gallery) -> None:
    """The batch gallery shows while the Images control asks for more than one. Set from the
    control, not from the results: an update in the result would reach API clients as a dict."""
    images.change(lambda n: gr.update(visible=(n or 1) > 1), inputs=images, outputs=batch,
                  queue=False, api_visibility="private")


def session_gallery(image: gr.Image) -> gr.Gallery:
    """This session's images: the gallery's value lives in the user's browser session, so
    nothing is shared between users."""
    gallery = gr.Gallery(label="This session's images", format="png", columns=6, height=200,
                         preview=False, interactive=False, elem_classes=["session-gallery"])
    image.change(add_to_gallery, inputs=[image, gallery], outputs=gallery,
                 api_visibility="private", queue=False)
    return gallery


def add_to_gallery(image: str | None, gallery):
    """Put a result (a PNG file) first in the gallery; previews and repeats are left out."""
    if image is None:
        return gr.skip()
    try:
        with Image.open(image) as picture:
            seed = picture.info.get("seed")
    except OSError:  # gone from gradio's cache already: nothing to keep
        return gr.skip()
    if seed is None:  # previews carry no settings: results only
        return gr.skip()
    caption = f"seed {seed}"
    if gallery and gallery[0][1] == caption and same_file(gallery[0][0], image):
        return gr.skip()  # the image's change event can fire twice for one result
    return [(image, caption), *(gallery or [])][:GALLERY_SIZE]


def same_file(path: str, other: str) -> bool:
    try:
        return Path(path).read_bytes() == Path(other).read_bytes()
    except OSError:  # the gallery's file is gone: not the same result then
        return False


def png_file(image: Image.Image) -> str:
    """The image as a PNG file (its settings kept) in gradio's cache, written once.

    Written by hand because gradio saves a returned PIL image by rewriting, in place, the file
    its bytes hash to, each time it is returned: a browser still loading that file (the result
    shown a moment ago, now returned again in a batch's gallery) gets a truncated response and
    shows a broken image. A file already in the cache gradio serves as it is."""
    data = processing_utils.encode_pil_to_bytes(image, "png")  # keeps the PNG's text info
    folder = Path(get_upload_folder()) / processing_utils.hash_bytes(data)
    path = folder / "image.png"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".{uuid.uuid4().hex}.png"
        staging.write_bytes(data)
        os.replace(staging, path)  # atomic: nobody ever reads half a file
    return str(path)
