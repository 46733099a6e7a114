"""SDXL base on its stand-in: the catalogue's defaults reach the pipeline, and classifier-free
guidance (above 1) runs the negative prompt."""

import threading

import numpy as np
import pytest

from pipelines import generate, stream
from pipelines.requests import Text2Image, validate


@pytest.fixture(scope="module")
def base(registry):
    return registry.get("tiny-base", "fp16")


def run(loaded, **fields):
    return generate.run(loaded, validate(Text2Image(
        **{"prompt": "a red fox", "model_id": "tiny-base", "seed": 9, **fields})))


def pixels(result) -> np.ndarray:
    return np.asarray(result.image)


def test_the_catalogue_defaults_reach_the_pipeline(base):
    """Steps, size and scheduler as the pipeline saw them (stopped after one step: 25 steps at
    1024² are slow even for the stand-in)."""
    stop = threading.Event()
    first = None
    with pytest.raises(generate.Stopped) as stopped:
        for item in stream.stream(base, validate(Text2Image(prompt="a red fox",
                                                            model_id="tiny-base")), stop=stop):
            first = first or item
            stop.set()
    assert first.image.size == (1024, 1024)  # the first step's latents, decoded
    assert stopped.value.total == 25  # the steps the scheduler was set for, as it reports


def test_guidance_above_one_runs_the_negative_prompt(base):
    fields = dict(steps=20, width=512, height=512)  # the default guidance, 7
    blurry = run(base, negative_prompt="blurry", **fields)
    assert not np.array_equal(pixels(blurry), pixels(run(base, negative_prompt="sharp", **fields)))
    assert np.array_equal(pixels(blurry), pixels(run(base, negative_prompt="blurry", **fields)))


def test_guidance_of_one_ignores_the_negative_prompt(base):
    fields = dict(steps=20, width=512, height=512, guidance=1.0)
    assert np.array_equal(pixels(run(base, negative_prompt="blurry", **fields)),
                          pixels(run(base, **fields)))


def test_the_png_settings_carry_the_negative_prompt():
    from PIL import Image

    from pipelines import pngmeta
    from pipelines.requests import Result

    request = validate(Text2Image(prompt="a red fox", model_id="tiny-base", seed=1,
                                  negative_prompt="blurry"))
    values = pngmeta.settings(request, Result(image=Image.new("RGB", (8, 8)), seed=1, timings={}))
    assert values["negative_prompt"] == "blurry"
    assert values["parameters"].startswith("a red fox\nNegative prompt: blurry\nSteps: 25,")
