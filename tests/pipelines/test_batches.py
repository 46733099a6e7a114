"""Batches on the tiny stand-in: image i of a batch uses seed + i and is the same bytes as that
seed alone, through generate.run_all and the streaming path the UI uses."""

import threading

import numpy as np
import pytest
from PIL import Image

from pipelines import generate, stream
from pipelines.requests import (MAX_SEED, Image2Image, InvalidRequest, Text2Image, seeds,
                                single, validate)
from tests.pipelines.test_generate import i2i, t2i
from tests.pipelines.test_inpaint import inpaint


def pixels(result) -> np.ndarray:
    return np.asarray(result.image)


@pytest.mark.parametrize("make", [t2i, i2i, inpaint])
def test_each_image_of_a_batch_is_its_seed_alone(loaded, make):
    request = validate(make(seed=40, images=3, steps=2, width=256, height=256))
    batch = generate.run_all(loaded, request)
    assert [result.seed for result in batch] == [40, 41, 42]
    for result in batch:
        alone = generate.run(loaded, validate(make(seed=result.seed, steps=2, width=256,
                                                   height=256)))
        assert np.array_equal(pixels(result), pixels(alone))
    assert not np.array_equal(pixels(batch[0]), pixels(batch[1]))


def test_a_batch_streams_previews_and_a_result_per_image(loaded):
    request = validate(t2i(seed=3, images=2, steps=2, width=256, height=256))
    items = list(stream.stream(loaded, request))
    results = [item for item in items if not isinstance(item, stream.Preview)]
    previews = [item for item in items if isinstance(item, stream.Preview)]
    assert [result.seed for result in results] == [3, 4]
    # 2 steps: a preview of the first (the last step's image is the result that follows).
    assert [(p.index, p.step) for p in previews] == [(0, 1), (1, 1)]
    assert all(result.image.size == (256, 256) for result in results)


def test_stop_ends_a_batch_at_the_next_step(loaded):
    stop = threading.Event()
    request = validate(t2i(seed=3, images=4, steps=2, width=256, height=256))
    run = stream.stream(loaded, request, stop=stop)
    first = next(run)  # the first image's first preview
    assert isinstance(first, stream.Preview) and first.index == 0
    stop.set()
    with pytest.raises(generate.Stopped):
        list(run)
    assert not loaded.lock.locked()  # the model is free for the next request


@pytest.mark.parametrize("images", [0, 5, 2.5, "two"])
def test_a_batch_size_outside_1_to_4_is_refused(images):
    with pytest.raises(InvalidRequest, match="Images must be"):
        validate(Text2Image("a fox", model_id="tiny", images=images))


def test_seeds_count_up_and_wrap_past_the_largest():
    request = validate(Text2Image("a fox", model_id="tiny", seed=MAX_SEED - 1, images=3))
    assert seeds(request) == [MAX_SEED - 1, MAX_SEED, 0]
    assert single(request, 0).images == 1 and single(request, 0).seed == 0
    source = Image.new("RGB", (64, 64))
    assert seeds(validate(Image2Image("a fox", model_id="tiny", seed=5, image=source,
                                      images=2))) == [5, 6]

