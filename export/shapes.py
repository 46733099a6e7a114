"""The captioned images a trained stand-in learns, and the judge of what it draws: "a {colour}
{shape} on a {colour} background", six colours and three shapes, drawn here with Pillow.

A person can tell at a glance whether such an image is right, and so can nearest(): of every
caption's render, the one closest to a generated image names what the image shows. Written by
hand: no library ships a captioned dataset this small, and the judge must see pixels, not
compare a pipeline with itself."""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
           "yellow": (240, 220, 40), "white": (245, 245, 245), "black": (20, 20, 20)}
SHAPES = ("circle", "square", "triangle")
FILL = 0.6  # of the side: the shape's bounding box, centred


@dataclass(frozen=True)
class Caption:
    colour: str  # the shape's
    shape: str
    background: str

    @property
    def text(self) -> str:
        return f"a {self.colour} {self.shape} on a {self.background} background"


def captions() -> list[Caption]:
    """Every caption the dataset has: each shape in each colour on each other colour (90)."""
    return [Caption(colour, shape, background) for shape in SHAPES for colour in COLOURS
            for background in COLOURS if background != colour]


def render(caption: Caption, size: int) -> Image.Image:
    """The caption drawn at size × size: the shape centred on its background."""
    image = Image.new("RGB", (size, size), COLOURS[caption.background])
    margin = size * (1 - FILL) / 2
    box = (margin, margin, size - margin, size - margin)
    draw, colour = ImageDraw.Draw(image), COLOURS[caption.colour]
    if caption.shape == "circle":
        draw.ellipse(box, fill=colour)
    elif caption.shape == "square":
        draw.rectangle(box, fill=colour)
    else:  # a triangle standing on its base
        draw.polygon([(size / 2, margin), (size - margin, size - margin),
                      (margin, size - margin)], fill=colour)
    return image


def psnr(image: Image.Image, target: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB of an image against a target of its size."""
    error = np.mean((np.asarray(image, np.float64) - np.asarray(target, np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255**2 / error))


def nearest(image: Image.Image, among: list[Caption] | None = None) -> Caption:
    """The caption whose render is closest to the image (the highest PSNR): what it shows."""
    among = among or captions()
    image = image.convert("RGB")
    return max(among, key=lambda caption: psnr(image, render(caption, image.width)))
