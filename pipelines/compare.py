"""FP16 vs INT8: one request on both variants of a model, one after the other, with the figures
that tell what quantization buys (latency per stage, disk, memory) and costs (PSNR, SSIM)."""

import math
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from pipelines import generate
from pipelines.registry import Registry
from pipelines.requests import Result, Text2Image, validate

VARIANTS = ("fp16", "int8")


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB of two 8-bit images; inf when they are identical."""
    mse = np.mean((_pixels(a) - _pixels(b)) ** 2)
    return math.inf if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: Image.Image, b: Image.Image) -> float:
    """Structural similarity (Wang et al. 2004: Gaussian window σ=1.5, K1=0.01, K2=0.03), the
    mean over pixels and RGB channels. Written by hand: scikit-image is not a dependency."""
    x, y = _pixels(a), _pixels(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda image: gaussian_filter(image, sigma=(1.5, 1.5, 0), truncate=3.5)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)
             / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)))
    return float(index.mean())


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


@dataclass
class Run:
    variant: str
    result: Result
    unet_bytes: int
    pipeline_bytes: int
    rss_growth: int  # bytes the process grew by when this variant was loaded


@dataclass
class Comparison:
    runs: list[Run]
    psnr: float
    ssim: float
    notes: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        """FP16 total time over INT8 total time."""
        fp16, int8 = (run.result.timings["total"] for run in self.runs)
        return fp16 / int8


def compare(registry: Registry, request: Text2Image) -> Comparison:
    """Run `request` on the FP16 and then the INT8 variant of its model, never both at once.
    A variant loaded by this call runs once untimed first, so compile-time warm-up is not
    counted against it. When the RAM budget cannot hold both, the registry loads them in turn."""
    request = validate(replace(request, variant=VARIANTS[0]),
                       registry.catalogue)  # fills in one seed for both
    runs, notes = [], []
    for variant in VARIANTS:
        was_loaded = (request.model_id, variant) in registry.loaded()
        loaded = registry.get(request.model_id, variant)
        if not was_loaded:
            generate.run(loaded, replace(request, variant=variant))
        result = generate.run(loaded, replace(request, variant=variant))
        sizes = registry.disk_sizes(request.model_id, variant)
        runs.append(Run(variant, result, sizes["unet"], sizes["total"], loaded.rss_growth))
    if (request.model_id, VARIANTS[0]) not in registry.loaded():
        notes.append(f"The RAM budget ({registry.ram_budget / 2**30:.1f} GB) cannot hold both "
                     "variants, so they were loaded in turn.")
    first, second = (run.result.image for run in runs)
    return Comparison(runs=runs, psnr=psnr(first, second), ssim=ssim(first, second), notes=notes)
