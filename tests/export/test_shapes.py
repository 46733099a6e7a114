"""The captioned shapes a trained stand-in learns (export.shapes), and the judge that names what
an image shows: each render is its own caption's, and the judge still tells them apart through
noise."""

import numpy as np
from PIL import Image

from export import shapes
from export.shapes import Caption


def test_every_colour_and_shape_on_every_other_colour():
    captions = shapes.captions()
    assert len(captions) == len({c.text for c in captions}) == 6 * 5 * 3
    assert {c.colour for c in captions} == set(shapes.COLOURS) == {c.background for c in captions}
    assert {c.shape for c in captions} == {"circle", "square", "triangle"}
    assert all(c.colour != c.background for c in captions)
    assert Caption("red", "circle", "blue").text == "a red circle on a blue background"


def test_a_render_draws_its_shape_in_its_colour_on_its_background():
    def pixel(caption: Caption, x: int, y: int) -> tuple:
        return shapes.render(caption, 64).getpixel((x, y))

    red, blue = shapes.COLOURS["red"], shapes.COLOURS["blue"]
    for shape in shapes.SHAPES:
        caption = Caption("red", shape, "blue")
        assert pixel(caption, 32, 40) == red and pixel(caption, 1, 1) == blue
    # The corners of the shape's box tell the shapes apart: filled only for the square, and a
    # triangle's base corners but not its top ones.
    top, bottom = (15, 15), (15, 47)
    assert [pixel(Caption("red", s, "blue"), *top) for s in shapes.SHAPES] == [blue, red, blue]
    assert [pixel(Caption("red", s, "blue"), *bottom) for s in shapes.SHAPES] == [blue, red, red]


def test_the_judge_names_each_render_and_sees_through_noise():
    rng = np.random.default_rng(0)
    for caption in shapes.captions():
        render = shapes.render(caption, 64)
        assert shapes.nearest(render) == caption
        noisy = np.asarray(render, np.float64) + rng.normal(0, 40, (64, 64, 3))
        assert shapes.nearest(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))) == caption


def test_psnr_known_answers():
    drawn = shapes.render(Caption("blue", "circle", "white"), 64)
    assert shapes.psnr(drawn, drawn) == float("inf")
    black, white = Image.new("RGB", (8, 8), (0, 0, 0)), Image.new("RGB", (8, 8), (255, 255, 255))
    grey = Image.new("RGB", (8, 8), (255 - 25, 255 - 25, 255 - 25))  # an error of 25 per pixel
    assert shapes.psnr(black, white) == 0.0
    assert abs(shapes.psnr(grey, white) - 20 * np.log10(255 / 25)) < 1e-9
