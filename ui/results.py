"""The result column every generation tab shows: the image (a PNG download that carries its
settings), the seed used, the timings, every image of a batch, and this session's gallery."""

import gradio as gr
import numpy as np
from PIL import Image

GALLERY_SIZE = 24  # newest first; older images drop off


def result_outputs() -> tuple[gr.Image, gr.Number, gr.Markdown, gr.Gallery]:
    # PNG keeps the settings pngmeta.tag put in the image's info (gradio copies text info).
    # Outputs are not upload targets: interactive=False.
    image = gr.Image(label="Result", type="pil", format="png", height=512, interactive=False)
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


def add_to_gallery(image, gallery):
    if image is None or "seed" not in image.info:  # previews carry no settings: results only
        return gr.skip()
    caption = f"seed {image.info['seed']}"
    if gallery and gallery[0][1] == caption and same_pixels(gallery[0][0], image):
        return gr.skip()  # the image's change event can fire twice for one result
    return [(image, caption), *(gallery or [])][:GALLERY_SIZE]


def same_pixels(path: str, image: Image.Image) -> bool:
    try:
        with Image.open(path) as other:
            return other.size == image.size and np.array_equal(
                np.asarray(other.convert("RGB")), np.asarray(image.convert("RGB")))
    except OSError:  # the gallery's file is gone: not the same result then
        return False
