"""Validation of requests and uploads: each bad input gets a clear message. No model needed."""

import dataclasses
import io
import struct
import zlib

import pytest
from PIL import Image

from pipelines import catalogue
from pipelines.requests import (MAX_SEED, Image2Image, InvalidRequest, Text2Image, load_image,
                                validate)

IMAGE = Image.new("RGB", (640, 480), "teal")


def t2i(**fields):
    return Text2Image(**{"prompt": "a cat", "model_id": "tiny", **fields})


def i2i(**fields):
    return Image2Image(**{"prompt": "a cat", "model_id": "tiny", "image": IMAGE, **fields})


def test_defaults_come_from_the_catalogue():
    request = validate(t2i())
    assert (request.steps, request.width, request.height, request.guidance) == (1, 512, 512, 0.0)
    assert 0 <= request.seed <= MAX_SEED


def test_random_seeds_differ_and_explicit_seed_is_kept():
    assert len({validate(t2i()).seed for _ in range(5)}) > 1
    assert validate(t2i(seed=42)).seed == 42
    assert validate(t2i(seed=42.0)).seed == 42


def test_control_characters_are_dropped():
    assert validate(t2i(prompt="a\x00 cat\x1b\x07 ")).prompt == "a cat"


@pytest.mark.parametrize("fields, message", [
    (dict(prompt=""), "enter a prompt"),
    (dict(prompt="   \n "), "enter a prompt"),
    (dict(prompt="\x00\x01"), "enter a prompt"),
    (dict(prompt=None), "must be text"),
    (dict(prompt="x" * 2000), "2000 characters"),
    (dict(width=500), "multiple of 64"),
    (dict(height=2048), "between 256 and 1024"),
    (dict(width=128), "between 256 and 1024"),
    (dict(width="wide"), "must be a number"),
    (dict(steps=0), "between 1 and 4"),
    (dict(steps=9), "between 1 and 4"),
    (dict(steps=1.5), "whole number"),
    (dict(seed=-1), "Seed must be"),
    (dict(seed=MAX_SEED + 1), "Seed must be"),
    (dict(seed=float("nan")), "finite"),
    (dict(seed="lucky"), "must be a number"),
    (dict(guidance=5.0), "Guidance"),
    (dict(model_id="../../etc"), "Unknown model"),
    (dict(variant="int4"), "no variant"),
])
def test_bad_text_to_image_input(fields, message):
    with pytest.raises(InvalidRequest, match=message):
        validate(t2i(**fields))


@pytest.mark.parametrize("fields, message", [
    (dict(image=None), "upload an image"),
    (dict(strength=0.0), "Strength"),
    (dict(strength=1.5), "Strength"),
    (dict(steps=5), "between 1 and 4"),
])
def test_bad_image_to_image_input(fields, message):
    with pytest.raises(InvalidRequest, match=message):
        validate(i2i(**fields))


def test_image_is_center_cropped_to_the_model_size():
    request = validate(i2i())
    assert request.image.size == (512, 512) and request.image.mode == "RGB"


def test_img2img_steps_are_raised_until_one_denoising_step_runs():
    request = validate(i2i(steps=2, strength=0.3))
    assert request.steps == 4 and int(request.steps * request.strength) == 1
    assert any("raised from 2 to 4" in note for note in request.notes)
    # Low strength may need more nominal steps than the slider allows; it still costs 1 step.
    assert validate(i2i(steps=1, strength=0.1)).steps == 10
    assert validate(i2i(steps=2, strength=0.5)).notes == ()


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width × height (a decompression bomb's header)."""
    data = bytearray(_png_bytes(Image.new("RGB", (1, 1))))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


@pytest.mark.parametrize("content, message", [
    (b"just some text, renamed to .png\n", "not an image"),
    (_png_bytes(Image.new("RGB", (64, 64), "red"))[:-40], "damaged or truncated"),
    (_png_claiming_size(20000, 20000), "too large|megapixels"),
    (_png_claiming_size(8000, 6000), "8000×6000"),
])
def test_bad_uploads_are_refused_before_decoding(tmp_path, content, message):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    with pytest.raises(InvalidRequest, match=message):
        load_image(path)


def test_missing_upload_is_refused(tmp_path):
    with pytest.raises(InvalidRequest, match="could not be found"):
        load_image(tmp_path / "gone.png")


def test_unusual_images_load_as_rgb(tmp_path):
    frames = [Image.new("P", (32, 32), i) for i in (10, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("I;16", (32, 32), 65535).save(tmp_path / "grey16.png")
    Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    loaded = {name: load_image(tmp_path / name)
              for name in ("anim.gif", "cmyk.jpg", "grey16.png", "clear.png")}
    assert all(image.mode == "RGB" and image.size == (32, 32) for image in loaded.values())
    red = loaded["cmyk.jpg"].getpixel((16, 16))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60  # CMYK converted, not reinterpreted
    assert loaded["grey16.png"].getpixel((0, 0)) == (255, 255, 255)  # scaled, not clipped
    assert loaded["clear.png"].getpixel((0, 0)) == (255, 255, 255)  # transparent → white


def test_negative_prompt_is_checked_like_the_prompt_and_kept_where_guidance_applies():
    request = validate(t2i(model_id="tiny-base", negative_prompt="  blurry\x00 "))
    assert request.negative_prompt == "blurry" and request.guidance == 7.0
    with pytest.raises(InvalidRequest, match="negative prompt is 2000 characters"):
        validate(t2i(model_id="tiny-base", negative_prompt="x" * 2000))
    with pytest.raises(InvalidRequest, match="negative prompt must be text"):
        validate(t2i(model_id="tiny-base", negative_prompt=3))
    assert validate(t2i(model_id="tiny-base", negative_prompt="  ")).negative_prompt is None


@pytest.mark.parametrize("model_id, guidance", [("tiny", None), ("tiny-vega", 1.0),
                                                ("tiny-vega", 0.5)])
def test_negative_prompt_is_dropped_where_guidance_ignores_it(model_id, guidance):
    request = validate(t2i(model_id=model_id, guidance=guidance, negative_prompt="blurry"))
    assert request.negative_prompt is None


def test_classifier_free_guidance_runs_where_diffusers_runs_it():
    turbo, vega, base = map(catalogue.get, ("sdxl-turbo", "segmind-vegart", "sdxl-base"))
    assert not turbo.uses_guidance and vega.uses_guidance and base.uses_guidance
    assert not vega.guided(1.0) and vega.guided(1.5) and base.guided(7.0)
    embedded = dataclasses.replace(base, guidance_embedding=True)  # an LCM-distilled UNet
    assert not embedded.guided(7.0) and not embedded.uses_guidance


def test_a_guidance_embedding_drops_the_negative_prompt(monkeypatch):
    monkeypatch.setitem(catalogue.MODELS, "tiny-base", dataclasses.replace(
        catalogue.MODELS["tiny-base"], guidance_embedding=True))
    request = validate(t2i(model_id="tiny-base", guidance=7.0, negative_prompt="blurry"))
    assert request.negative_prompt is None


def test_vega_and_sdxl_base_defaults_come_from_the_catalogue():
    vega = validate(t2i(model_id="tiny-vega"))
    assert (vega.steps, vega.guidance, vega.width, vega.height) == (4, 1.0, 1024, 1024)
    base = validate(t2i(model_id="tiny-base"))
    assert (base.steps, base.guidance, base.width, base.height) == (25, 7.0, 1024, 1024)
    for steps in (1, 9):
        with pytest.raises(InvalidRequest, match="between 2 and 8"):
            validate(t2i(model_id="tiny-vega", steps=steps))


def test_image_to_image_takes_a_size_within_the_models_range():
    assert validate(i2i(model_id="tiny-vega", width=512, height=512)).image.size == (512, 512)
    assert validate(i2i(model_id="tiny-vega")).image.size == (1024, 1024)
    with pytest.raises(InvalidRequest, match="between 512 and 1024"):
        validate(i2i(model_id="tiny-vega", width=256, height=256))


def test_a_live_frame_array_becomes_an_rgb_image():
    import numpy as np

    from pipelines.requests import frame_image

    assert frame_image(None) is None
    for frame in (np.zeros((48, 64, 3), np.uint8), np.zeros((48, 64), np.uint8),
                  np.zeros((48, 64, 1), np.uint8), np.zeros((48, 64, 4), np.uint8)):
        image = frame_image(frame)
        assert image.mode == "RGB" and image.size == (64, 48)
    # A transparent sketch is composited on white, not black.
    assert frame_image(np.zeros((8, 8, 4), np.uint8)).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("frame, message", [
    ("not an image", "must be an image"),
    ("a list", "must be an image"),
    ("float", "8-bit pixels"),
    ("five channels", "must be an image"),
    ("empty", "cannot be used"),
])
def test_bad_live_frames_are_refused_with_a_message(frame, message):
    import numpy as np

    from pipelines.requests import frame_image

    frame = {"float": np.zeros((8, 8, 3), np.float32),
             "five channels": np.zeros((8, 8, 5), np.uint8),
             "empty": np.zeros((0, 8, 3), np.uint8),
             "a list": [[1, 2], [3, 4]]}.get(frame, frame)
    with pytest.raises(InvalidRequest, match=message):
        frame_image(frame)
