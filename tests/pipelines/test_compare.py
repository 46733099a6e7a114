"""FP16 vs INT8 on the tiny stand-in: both images, every figure, and honest similarity numbers."""

import math
import shutil

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pipelines import compare
from pipelines.registry import ModelNotAvailable, Registry
from pipelines.requests import Result, Text2Image


def noise(seed: int, size=(64, 64)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_psnr_and_ssim_of_identical_images():
    image = noise(1)
    assert compare.psnr(image, image.copy()) == math.inf
    assert compare.ssim(image, image.copy()) == pytest.approx(1.0)


def test_psnr_and_ssim_fall_as_images_differ():
    image = noise(1)
    slightly = image.filter(ImageFilter.GaussianBlur(0.5))
    unrelated = noise(2)
    assert math.isfinite(compare.psnr(image, slightly))
    assert compare.psnr(image, slightly) > compare.psnr(image, unrelated)
    assert 1.0 > compare.ssim(image, slightly) > compare.ssim(image, unrelated)
    assert abs(compare.ssim(image, unrelated)) < 0.1  # independent noise: no structure shared


def test_psnr_matches_its_definition():
    black, grey = Image.new("RGB", (8, 8), 0), Image.new("RGB", (8, 8), (10, 10, 10))
    assert compare.psnr(black, grey) == pytest.approx(28.1308, abs=1e-4)  # 10·log10(255²/10²)


def test_comparison_runs_both_variants_with_all_figures(registry):
    result = compare.compare(registry, Text2Image(prompt="a red fox", model_id="tiny", seed=7,
                                                  width=256, height=256))
    fp16, int8 = result.runs
    assert (fp16.variant, int8.variant) == ("fp16", "int8")
    assert fp16.result.seed == int8.result.seed == 7
    assert fp16.result.image.size == int8.result.image.size == (256, 256)
    for run in result.runs:
        assert {"text encoders", "UNet", "decoder", "total"} <= set(run.result.timings)
        # Reported as measured: a tiny model's load grows the process by a few MB, less than
        # what other threads may free meanwhile, so neither its sign nor its size says more.
        assert isinstance(run.rss_growth, int)
        assert 0 < run.unet_bytes < run.pipeline_bytes
    assert int8.unet_bytes < fp16.unet_bytes
    # Quantization changes the image, but not into another one.
    assert math.isfinite(result.psnr) and 0 < result.ssim < 1
    assert result.speedup > 0 and result.notes == []


def test_the_speedup_is_fp16_time_over_int8_time():
    def run(variant: str, total: float) -> compare.Run:
        result = Result(image=noise(1), seed=1, timings={"total": total})
        return compare.Run(variant, result, unet_bytes=1, pipeline_bytes=2, rss_growth=0)

    comparison = compare.Comparison([run("fp16", 3.0), run("int8", 1.5)], psnr=30.0, ssim=0.9)
    assert comparison.speedup == 2.0


def test_a_budget_too_small_for_both_loads_them_in_turn(models_dir, tmp_path):
    for variant in ("fp16", "int8"):
        shutil.copytree(models_dir / "tiny" / variant, tmp_path / "tiny" / variant)
    probe = Registry(tmp_path)
    fp16_needs = probe.get("tiny", "fp16").ram_estimate
    small = Registry(tmp_path, ram_budget=int(fp16_needs * 1.2))  # one at a time, not both
    result = compare.compare(small, Text2Image(prompt="a cat", model_id="tiny", seed=1))
    assert len(result.runs) == 2 and "loaded in turn" in result.notes[0]
    assert small.loaded() == [("tiny", "int8")]


def test_a_missing_variant_says_how_to_export_it(models_dir, tmp_path):
    shutil.copytree(models_dir / "tiny" / "fp16", tmp_path / "tiny" / "fp16")
    with pytest.raises(ModelNotAvailable, match="python -m export tiny --variant int8"):
        compare.compare(Registry(tmp_path), Text2Image(prompt="a cat", model_id="tiny"))
