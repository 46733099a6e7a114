"""Generation through the registry on the tiny stand-in: the real optimum-intel / OpenVINO path."""

import threading

import numpy as np
import pytest
from PIL import Image

from pipelines import generate
from pipelines.registry import ModelNotAvailable, Registry
from pipelines.requests import Image2Image, Text2Image, validate
from tests.pipelines.test_inpaint import inpaint


def run(loaded, request, on_step=None):
    return generate.run(loaded, validate(request), on_step)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def t2i(**fields):
    return Text2Image(**{"prompt": "a red fox in the snow", "model_id": "tiny", "seed": 7,
                         **fields})


def i2i(**fields):
    source = Image.new("RGB", (800, 600), "orange")
    return Image2Image(**{"prompt": "a castle", "model_id": "tiny", "seed": 7, "image": source,
                          **fields})


@pytest.mark.parametrize("width, height", [(512, 512), (768, 256), (256, 1024)])
def test_text_to_image_has_the_requested_size(loaded, width, height):
    result = run(loaded, t2i(width=width, height=height))
    assert result.image.size == (width, height)
    assert pixels(result.image).std() > 0  # not a blank frame


def test_same_seed_same_image_other_seed_other_image(loaded):
    first, again = run(loaded, t2i(seed=1)), run(loaded, t2i(seed=1))
    other = run(loaded, t2i(seed=2))
    assert first.seed == again.seed == 1 and other.seed == 2
    assert np.array_equal(pixels(first.image), pixels(again.image))
    assert not np.array_equal(pixels(first.image), pixels(other.image))


def test_random_seed_is_returned_and_reproduces_the_image(loaded):
    result = run(loaded, t2i(seed=None))
    again = run(loaded, t2i(seed=result.seed))
    assert np.array_equal(pixels(result.image), pixels(again.image))


def test_steps_report_progress_and_change_the_image(loaded):
    seen = []
    four = run(loaded, t2i(steps=4), on_step=lambda done, total: seen.append((done, total)))
    # genai reports steps from a thread of its own and drops those still queued at the end:
    # the first step is reported, the progress only rises, and it ends complete.
    dones = [done for done, _ in seen]
    assert seen[0] == (1, 4) and seen[-1] == (4, 4) and {total for _, total in seen} == {4}
    assert dones == sorted(set(dones))
    assert not np.array_equal(pixels(four.image), pixels(run(loaded, t2i(steps=1)).image))


def test_timings_cover_each_stage(loaded):
    timings = run(loaded, t2i(prompt="a prompt no other test encodes")).timings
    assert set(timings) == {"text encoders", "UNet", "decoder", "total"}
    assert all(seconds > 0 for seconds in timings.values())
    assert timings["total"] >= timings["UNet"] + timings["decoder"]
    i2i_timings = run(loaded, i2i()).timings
    assert "VAE encoder" in i2i_timings


def test_image_to_image_uses_the_image(loaded):
    result = run(loaded, i2i())
    assert result.image.size == (512, 512)
    other_image = run(loaded, i2i(image=Image.new("RGB", (512, 512), "navy")))
    assert not np.array_equal(pixels(result.image), pixels(other_image.image))
    assert np.array_equal(pixels(result.image), pixels(run(loaded, i2i()).image))


@pytest.mark.parametrize("make", [i2i, inpaint], ids=["image-to-image", "inpainting"])
def test_image_to_image_raises_steps_and_says_so(loaded, make):
    seen = []
    result = run(loaded, make(steps=1, strength=0.5), on_step=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 1)]
    assert any("Steps raised from 1 to 2" in warning for warning in result.warnings)


def test_long_prompt_warns_with_the_ignored_part(loaded):
    words = [f"word{i}" for i in range(120)]
    result = run(loaded, t2i(prompt=" ".join(words)))
    (warning,) = result.warnings
    assert "ignored" in warning and "word119" in warning and "word0 " not in warning
    assert run(loaded, t2i(prompt="a short prompt")).warnings == []


def test_both_tasks_share_one_set_of_compiled_models(loaded):
    loaded.pipeline("text2image", False)
    compiled = dict(loaded.parts.compiled)
    loaded.pipeline("image2image", False)
    assert loaded.parts.compiled == compiled  # nothing compiled again for image-to-image


def test_registry_loads_once(registry, loaded):
    assert registry.get("tiny", "fp16") is loaded


def test_threads_on_one_pipeline_get_correct_images(loaded):
    expected = {seed: pixels(run(loaded, t2i(seed=seed)).image) for seed in (11, 12, 13)}
    got, errors = {}, []

    def worker(seed):
        try:
            for _ in range(3):
                image = pixels(run(loaded, t2i(seed=seed)).image)
                got.setdefault(seed, []).append(image)
        except Exception as e:  # noqa: BLE001 -- surfaced by the assert below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in expected]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert all(np.array_equal(image, expected[seed]) for seed, images in got.items()
               for image in images)
    assert sum(len(images) for images in got.values()) == 9


def test_unexported_model_says_how_to_export_it(tmp_path):
    with pytest.raises(ModelNotAvailable, match="python -m export sdxl-turbo"):
        Registry(tmp_path).get("sdxl-turbo", "fp16")


def test_only_catalogue_models_load(registry):
    with pytest.raises(KeyError, match="Unknown model"):
        registry.get("stabilityai/some-other-repo", "fp16")
    with pytest.raises(KeyError, match="no variant"):
        registry.get("tiny", "../../etc")
