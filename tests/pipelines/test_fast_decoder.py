"""The fast decoder: the tiny stand-in's Tiny Autoencoder (exported by conftest through
export/taesd.py) decodes text-to-image and encodes and decodes image-to-image, sharing the
compiled UNet; where it is not exported, the full VAE serves and asking for TAESD says how to
get it."""

import json
import shutil

import numpy as np
import openvino as ov
import pytest
from PIL import Image

from pipelines import generate
from pipelines.registry import ModelNotAvailable, Registry
from pipelines.requests import Image2Image, Text2Image, validate


def run(loaded, **fields):
    kind = Image2Image if "image" in fields else Text2Image
    return generate.run(loaded, validate(kind(model_id="tiny", **fields)))


def pixels(result) -> np.ndarray:
    return np.asarray(result.image)


def test_taesd_export_has_both_halves_with_optimum_names(models_dir):
    folder = models_dir / "tiny-taesd"
    for half, input_name, output_name in (("vae_decoder", "latent_sample", "sample"),
                                          ("vae_encoder", "sample", "latent_sample")):
        model = ov.Core().read_model(folder / half / "openvino_model.xml")
        assert model.inputs[0].get_names() == {input_name}
        assert model.outputs[0].get_names() == {output_name}
        assert model.inputs[0].get_partial_shape().is_dynamic  # any size, any batch
        config = json.loads((folder / half / "config.json").read_text())
        assert config["_class_name"] == "AutoencoderTiny" and config["scaling_factor"] == 1.0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "AutoencoderTiny" in manifest["method"]


def test_fast_decoder_is_the_default_and_makes_another_image(loaded):
    assert loaded.has_fast_decoder
    default = run(loaded, prompt="a red fox", seed=4, width=768, height=512)
    full = run(loaded, prompt="a red fox", seed=4, width=768, height=512, fast_decoder=False)
    assert default.decoder == "Tiny TAESD stand-in" and full.decoder == "full VAE"
    assert default.image.size == full.image.size == (768, 512)
    assert not np.array_equal(pixels(default), pixels(full))
    again = run(loaded, prompt="a red fox", seed=4, width=768, height=512, fast_decoder=True)
    assert np.array_equal(pixels(default), pixels(again))


def test_fast_decoder_shares_the_compiled_unet(loaded):
    unet = loaded.parts.compiled["unet"]
    for task in ("text2image", "image2image", "inpaint"):
        for fast in (True, False):
            loaded.pipeline(task, fast)
    # Every task and decoder is built on the one compiled UNet and text encoders; each decoder
    # has its own VAE.
    assert loaded.parts.compiled["unet"] is unet
    assert set(loaded.parts.compiled) == {"unet", "text_encoder", "text_encoder_2", "vae",
                                          "fast/vae"}


def test_image_to_image_encodes_with_taesd_too(loaded):
    source = Image.radial_gradient("L").convert("RGB").resize((512, 512))
    fast = run(loaded, prompt="a castle", image=source, seed=2, strength=0.5, steps=2)
    full = run(loaded, prompt="a castle", image=source, seed=2, strength=0.5, steps=2,
               fast_decoder=False)
    assert fast.image.size == (512, 512) and fast.decoder != full.decoder
    assert fast.timings["VAE encoder"] > 0
    assert not np.array_equal(pixels(fast), pixels(full))


@pytest.fixture(scope="module")
def without_taesd(models_dir, tmp_path_factory):
    """A models folder with the tiny FP16 model but no Tiny Autoencoder."""
    folder = tmp_path_factory.mktemp("no-taesd")
    shutil.copytree(models_dir / "tiny" / "fp16", folder / "tiny" / "fp16")
    return Registry(folder).get("tiny", "fp16")


def test_without_taesd_the_full_vae_serves_and_asking_for_it_says_how(without_taesd):
    assert not without_taesd.has_fast_decoder
    assert run(without_taesd, prompt="a red fox", seed=1).decoder == "full VAE"
    with pytest.raises(ModelNotAvailable, match="python -m export tiny-taesd"):
        run(without_taesd, prompt="a red fox", seed=1, fast_decoder=True)
