"""INT8 Tiny Autoencoder (made once per session by conftest: NNCF on both halves, calibrated on
the tiny model's latents and decoded images): quantized, smaller, close to the FP16 TAESD, and
what the INT8 model variant decodes with."""

import collections
import json
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from export import export_autoencoder
from export.convert import from_exported
from pipelines import catalogue, generate
from pipelines.layout import VAE_HALVES as HALVES
from pipelines.registry import Registry
from pipelines.requests import Text2Image, validate
from export.standins import INT8_SAMPLES

# Measured: 57.4 dB for four latents of the tiny model (the FP16 and INT8 decoders differ by
# about 0.1% of the pixel range). 40 dB (an RMS error of 1% of the range) leaves room for other
# calibration data and CPUs, and still fails on a wrongly calibrated decoder (its saturated
# ranges give errors of 10% and more, i.e. under 20 dB).
MIN_DECODER_PSNR_DB = 40.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two decoder outputs as 8-bit pixels (the decoder's [-1, 1] range clipped, as the
    pipeline does)."""
    to_pixels = lambda x: (np.clip(x, -1, 1) + 1) * 127.5  # noqa: E731
    return float(10 * np.log10(255**2 / np.mean((to_pixels(a) - to_pixels(b)) ** 2)))


def ops(xml: Path) -> collections.Counter:
    return collections.Counter((op.get_type_name(), op.get_output_element_type(0).get_type_name())
                               for op in ov.Core().read_model(xml).get_ops())


@pytest.fixture(scope="module")
def folders(models_dir):
    registry = Registry(models_dir)
    return (registry.autoencoder_folder("tiny-taesd"),
            registry.autoencoder_folder("tiny-taesd", "int8"))


@pytest.mark.parametrize("half", HALVES)
def test_int8_taesd_is_quantized_and_smaller(folders, half):
    fp16, int8 = (folder / half / "openvino_model.xml" for folder in folders)
    assert ops(int8)[("FakeQuantize", "f32")] >= 4 and ops(int8)[("Constant", "i8")] >= 4
    assert not ops(fp16)[("FakeQuantize", "f32")]
    assert int8.with_suffix(".bin").stat().st_size < 0.7 * fp16.with_suffix(".bin").stat().st_size
    config = json.loads((int8.parent / "config.json").read_text())
    assert config["scaling_factor"] == 1.0  # the pipeline hands it unscaled latents


def test_int8_taesd_decodes_and_encodes_close_to_fp16(folders, loaded):
    # Latents of a run the calibration never saw (another prompt and seed), as the UNet makes them.
    # optimum-intel's pipeline (the export side) returns them: openvino.genai returns images.
    from optimum.intel import OVStableDiffusionXLPipeline

    pipeline = from_exported(OVStableDiffusionXLPipeline, loaded.folder, compile=True)
    latents = pipeline("a lighthouse in fog", num_inference_steps=1, guidance_scale=0.0,
                       width=384, height=256, output_type="latent",
                       generator=torch.Generator().manual_seed(991)).images
    latents = np.asarray(latents, dtype=np.float32)
    core = ov.Core()
    compiled = {(f.name, half): core.compile_model(f / half / "openvino_model.xml")
                for f in folders for half in HALVES}
    fp16, int8 = (f.name for f in folders)
    images = [compiled[variant, "vae_decoder"](latents)[0] for variant in (fp16, int8)]
    assert images[0].shape == images[1].shape == (1, 3, 256, 384)
    assert MIN_DECODER_PSNR_DB < psnr(*images) < float("inf")
    encoded = [compiled[variant, "vae_encoder"](images[0])[0] for variant in (fp16, int8)]
    assert encoded[1].shape == latents.shape
    assert np.abs(encoded[1] - encoded[0]).mean() < 0.05 * np.abs(encoded[0]).mean()


def test_int8_variant_decodes_with_the_int8_taesd(registry):
    def autoencoder(variant):
        loaded = registry.get("tiny", variant)
        return loaded.parts.autoencoder.name

    assert (autoencoder("int8"), autoencoder("fp16")) == ("tiny-taesd-int8", "tiny-taesd")
    request = validate(Text2Image(prompt="a red fox", model_id="tiny", variant="int8", seed=3,
                                  width=320, height=256, fast_decoder=True))
    assert generate.run(registry.get("tiny", "int8"), request).image.size == (320, 256)


def test_int8_model_without_int8_taesd_keeps_the_fp16_one(models_dir, tmp_path):
    registry = Registry(tmp_path)
    (tmp_path / "tiny-taesd").symlink_to(models_dir / "tiny-taesd")
    spec = catalogue.get("tiny")
    assert registry.autoencoder_for(spec, "int8") == tmp_path / "tiny-taesd"
    assert Registry(models_dir).autoencoder_for(spec, "int8") == models_dir / "tiny-taesd-int8"


def test_int8_taesd_manifest(folders):
    manifest = json.loads((folders[1] / "manifest.json").read_text())
    assert manifest["variant"] == "int8" and "NNCF" in manifest["method"]
    details = manifest["quantization"]
    assert details["samples"]["decoder latents"] == INT8_SAMPLES
    assert details["samples"]["encoder images"] > INT8_SAMPLES  # plus the example images
    assert details["calibration_model"] == "tiny (fp16)"
    assert set(HALVES) <= set(manifest["sizes_bytes"])


def test_int8_taesd_needs_a_model_to_calibrate_on(tmp_path):
    with pytest.raises(ValueError, match="python -m export tiny"):
        export_autoencoder("tiny-taesd", tmp_path, variant="int8", samples=2)
    assert not (tmp_path / "tiny-taesd-int8").exists()
    with pytest.raises(ValueError, match="no variant"):
        export_autoencoder("tiny-taesd", tmp_path, variant="int4")
