"""Inpainting on the tiny stand-in through the real optimum-intel / OpenVINO path: the request's
checks, the pipeline on the shared compiled parts, previews and Stop, and the CLI."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipelines import generate, pngmeta, stream
from pipelines.requests import (Image2Image, Inpaint, InvalidRequest, Result, fit_image,
                                load_mask, validate)

ROOT = Path(__file__).resolve().parents[2]
BOX = (128, 160, 320, 352)  # the region to repaint in a 512² image


def noise(size=(512, 512)) -> Image.Image:
    """A source where every pixel differs from its neighbours: a changed pixel cannot pass for
    an unchanged one by chance."""
    return Image.effect_noise(size, 64).convert("RGB").point(lambda v: (v * 7) % 256)


def box_mask(size=(512, 512), box=BOX) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


SOURCE, MASK = noise(), box_mask()


def inpaint(**fields) -> Inpaint:
    return Inpaint(**{"prompt": "a red door", "model_id": "tiny", "seed": 7, "image": SOURCE,
                      "mask": MASK, "strength": 1.0, "steps": 2, **fields})


def run(loaded, request, **options) -> Result:
    return generate.run(loaded, validate(request), **options)


def split(image: Image.Image, mask: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The image's pixels outside the mask and inside it."""
    pixels, inside = np.asarray(image.convert("RGB")), np.asarray(mask) > 127
    return pixels[~inside], pixels[inside]


def test_outside_the_mask_stays_the_source_inside_it_changes(loaded):
    result = run(loaded, inpaint())
    assert result.image.size == (512, 512)
    outside, inside = split(result.image, MASK)
    source_outside, source_inside = split(SOURCE, MASK)
    assert np.array_equal(outside, source_outside)
    assert (inside != source_inside).any(axis=1).mean() > 0.9  # nearly every pixel repainted
    assert "VAE encoder" in result.timings and "UNet" in result.timings


def test_the_full_decoder_keeps_the_outside_too(loaded):
    result = run(loaded, inpaint(fast_decoder=False))
    assert result.decoder == "full VAE"
    assert np.array_equal(split(result.image, MASK)[0], split(SOURCE, MASK)[0])


def test_same_seed_same_bytes_other_seed_other_inside(loaded):
    first, again = run(loaded, inpaint(seed=3)), run(loaded, inpaint(seed=3))
    assert first.image.tobytes() == again.image.tobytes()
    other = run(loaded, inpaint(seed=4))
    assert not np.array_equal(split(first.image, MASK)[1], split(other.image, MASK)[1])


def test_the_mask_decides_where_it_changes(loaded):
    """Not image-to-image under another name: another mask, another region kept."""
    inpainted = run(loaded, inpaint()).image
    transformed = run(loaded, Image2Image(prompt="a red door", model_id="tiny", seed=7,
                                          image=SOURCE, strength=1.0, steps=2)).image
    assert not np.array_equal(split(transformed, MASK)[0], split(SOURCE, MASK)[0])
    other_mask = box_mask(box=(0, 0, 100, 511))
    elsewhere = run(loaded, inpaint(mask=other_mask)).image
    assert np.array_equal(split(elsewhere, other_mask)[0], split(SOURCE, other_mask)[0])
    assert not np.array_equal(split(elsewhere, MASK)[1], split(inpainted, MASK)[1])


def test_image_and_mask_are_cropped_alike(loaded):
    """An 800×600 source is center-cropped to 512²; the mask with it, so the kept pixels are
    those of the cropped source, under the cropped mask."""
    source = noise((800, 600))
    mask = box_mask((800, 600), (300, 200, 500, 400))
    request = validate(inpaint(image=source, mask=mask))
    assert request.mask.size == (512, 512) and set(request.mask.getdata()) == {0, 255}
    result = generate.run(loaded, request)
    cropped = fit_image(source, 512, 512)
    assert np.array_equal(split(result.image, request.mask)[0],
                          split(cropped, request.mask)[0])
    # The crop keeps x 100-700 of 800: the 200² box at (300, 200) becomes (200, 200) of the
    # 600² crop, then ×512/600; a plain resize would put it at x 191-321 instead.
    assert request.mask.getbbox() == (171, 171, 342, 342)


def test_inpainting_shares_the_compiled_parts(loaded):
    for fast in (True, False):
        loaded.pipeline("text2image", fast)
        compiled = dict(loaded.parts.compiled)
        loaded.pipeline("inpaint", fast)
        assert loaded.parts.compiled == compiled  # nothing compiled again for inpainting


def test_previews_then_the_plain_run_s_image(loaded):
    items = list(stream.stream(loaded, validate(inpaint(steps=4))))
    steps = [(p.step, p.steps) for p in items[:-1]]
    # The first step's preview surely, later ones as they keep up, never the last step's.
    assert steps[0] == (1, 4) and steps == sorted(set(steps)) and steps[-1][0] < 4
    assert items[-1].image.tobytes() == run(loaded, inpaint(steps=4)).image.tobytes()


def test_stop_ends_the_run_and_frees_the_model(loaded):
    stop = threading.Event()
    items = stream.stream(loaded, validate(inpaint(steps=4)), stop=stop)
    assert next(items).step == 1
    stop.set()
    with pytest.raises(generate.Stopped) as stopped:
        list(items)
    assert stopped.value.done < 4 and not loaded.lock.locked()


@pytest.mark.parametrize("fields, message", [
    (dict(mask=None), "Please paint the region to change"),
    (dict(mask=Image.new("L", (512, 512), 0)), "The mask covers nothing:"),
    # Painted only where the center crop of an 800×512 image cuts it away.
    (dict(image=noise((800, 512)), mask=box_mask((800, 512), (0, 0, 100, 511))),
     "The mask covers nothing inside the center crop"),
    (dict(mask=Image.new("L", (512, 512), 255)), "The mask covers the whole image"),
    (dict(mask=box_mask((256, 256))), "The mask is 256×256 pixels and the image 512×512"),
    (dict(image=None), "Please upload an image"),
])
def test_bad_masks_get_clear_messages(fields, message):
    with pytest.raises(InvalidRequest, match=message):
        validate(inpaint(**fields))


def test_a_faint_stroke_does_not_count(loaded):
    """Below half intensity is kept, as diffusers' mask processor thresholds it."""
    faint = box_mask().point(lambda v: v // 2)
    with pytest.raises(InvalidRequest, match="covers nothing"):
        validate(inpaint(mask=faint))


def test_mask_files_read_alpha_where_transparent_else_brightness(tmp_path):
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle((0, 0, 31, 63), fill=(255, 0, 0, 255))  # a red brush
    layer.save(tmp_path / "layer.png")
    assert load_mask(tmp_path / "layer.png").getbbox() == (0, 0, 32, 64)
    grey = Image.new("RGB", (64, 64), "black")
    ImageDraw.Draw(grey).rectangle((32, 0, 63, 63), fill="white")
    grey.convert("RGBA").save(tmp_path / "opaque.png")  # opaque alpha: read as black and white
    assert load_mask(tmp_path / "opaque.png").getbbox() == (32, 0, 64, 64)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(InvalidRequest, match="not an image"):
        load_mask(tmp_path / "text.png")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pipelines", *map(str, args)], cwd=ROOT,
                          env=os.environ, capture_output=True, text=True, timeout=300)


def test_the_cli_inpaints_with_a_mask_file(tmp_path, loaded, models_dir):
    SOURCE.save(tmp_path / "photo.png")
    MASK.save(tmp_path / "mask.png")
    out = tmp_path / "door.png"
    done = cli("generate", "a red door", "--model", "tiny", "--image", tmp_path / "photo.png",
               "--mask", tmp_path / "mask.png", "--strength", "1", "--steps", "2", "--seed", "7",
               "-o", out, "--models-dir", models_dir)
    assert done.returncode == 0, done.stderr
    written = Image.open(out)
    assert written.size == (512, 512) and pngmeta.read(out)["strength"] == "1"
    # The image this process makes for the same request, outside the mask the source's.
    assert np.array_equal(np.asarray(written.convert("RGB")),
                          np.asarray(run(loaded, inpaint()).image))
    assert np.array_equal(split(written, MASK)[0], split(SOURCE, MASK)[0])


@pytest.mark.parametrize("args, message", [
    (["--mask", __file__], "--mask applies to inpainting: give --image too"),
    (["--image", ROOT / "assets" / "examples" / "dusk-hills.png", "--mask", __file__],
     "not an image"),
])
def test_the_cli_refuses_a_mask_it_cannot_use(args, message):
    done = cli("generate", "a fox", "--model", "tiny", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_guided_model_inpaints_too(registry):
    """SDXL base's stand-in: classifier-free guidance doubles the UNet batch, mask included."""
    base = registry.get("tiny-base", "fp16")
    base_512 = dict(model_id="tiny-base", width=512, height=512, steps=20, strength=0.5)
    result = run(base, inpaint(guidance=7.0, negative_prompt="blurry", **base_512))
    outside, inside = split(result.image, MASK)
    assert np.array_equal(outside, split(SOURCE, MASK)[0])
    assert (inside != split(SOURCE, MASK)[1]).any(axis=1).mean() > 0.9
    unguided = run(base, inpaint(guidance=1.0, **base_512))
    assert not np.array_equal(split(unguided.image, MASK)[1], inside)
