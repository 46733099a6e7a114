"""The Segmind-VegaRT path on its stand-in: the tiny Vega-like model with a tiny LoRA fused in
(exported by conftest), LCM sampling in 2-8 steps, previews per step, and stopping a run."""

import shutil
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from export import convert, tiny
from pipelines import compiled, generate, stream
from pipelines.errors import InvalidSetting
from pipelines.registry import Registry
from pipelines.requests import Image2Image, Result, Text2Image, validate


@pytest.fixture(scope="module")
def vega(registry):
    return registry.get("tiny-vega", "fp16")


def request(**fields):
    kind = Image2Image if "image" in fields else Text2Image
    return validate(kind(**{"prompt": "a red fox", "model_id": "tiny-vega", "seed": 5,
                            "width": 512, "height": 512, **fields}))


def pixels(image) -> np.ndarray:
    return np.asarray(image)


def test_each_model_runs_the_scheduler_the_catalogue_names(models_dir):
    """The catalogue's scheduler options (over the folder's config) and its scheduler's name
    reach the pipeline: change either and the images change."""
    def image(model_id, spec_change):
        registry = Registry(models_dir)
        models = registry.catalogue.models
        changed = replace(models[model_id], **spec_change)
        registry.catalogue = replace(registry.catalogue, models={**models, model_id: changed})
        loaded = registry.get(model_id, "fp16")
        return pixels(generate.run(loaded, validate(Text2Image(
            prompt="a lighthouse", model_id=model_id, seed=3, steps=2))).image)

    leading = {"scheduler_options": (("timestep_spacing", "leading"),)}  # the folder: trailing
    assert not np.array_equal(image("tiny", {}), image("tiny", leading))
    assert not np.array_equal(image("tiny-vega", {}),
                              image("tiny-vega", {"scheduler": "EulerDiscreteScheduler"}))
    with pytest.raises(InvalidSetting, match="not one openvino.genai runs"):
        compiled.scheduler("DPMSolverMultistepScheduler",
                           models_dir / "tiny" / "fp16" / "scheduler" / "scheduler_config.json", {})


@pytest.mark.parametrize("steps", [2, 8])
def test_lcm_runs_the_requested_steps(vega, steps):
    done = []
    result = generate.run(vega, request(steps=steps), on_step=lambda d, t: done.append((d, t)))
    assert done == [(i, steps) for i in range(1, steps + 1)]
    assert result.image.size == (512, 512)


@pytest.fixture(scope="module")
def unfused(models_dir, tmp_path_factory):
    """The same tiny Vega exported without its LoRA, as the model `tiny-vega` in another
    folder."""
    folder = tmp_path_factory.mktemp("unfused")
    source = tiny.save_source(folder / "work", vega=True)
    convert.export_pipeline(source, folder / "tiny-vega" / "fp16")
    return folder


def test_fusing_the_lora_changes_the_unet_weights_and_the_image(models_dir, unfused, vega):
    fused_dir, plain_dir = models_dir / "tiny-vega" / "fp16", unfused / "tiny-vega" / "fp16"
    weights = lambda folder, part: (folder / part / "openvino_model.bin").read_bytes()  # noqa: E731
    assert weights(fused_dir, "text_encoder") == weights(plain_dir, "text_encoder")  # control
    fused_unet, plain_unet = weights(fused_dir, "unet"), weights(plain_dir, "unet")
    assert len(fused_unet) == len(plain_unet) and fused_unet != plain_unet
    plain = Registry(unfused).get("tiny-vega", "fp16")
    image = lambda loaded: pixels(generate.run(loaded, request(fast_decoder=False)).image)  # noqa: E731
    assert not np.array_equal(image(vega), image(plain))


def test_previews_arrive_in_step_order_and_the_final_image_is_the_plain_runs(vega):
    items = list(stream.stream(vega, request(steps=3)))
    previews, result = items[:-1], items[-1]
    # The first step's preview surely, the second's if it kept up with the steps (the tiny
    # UNet is faster than the decoder), never the last's: the result is that image.
    assert [(p.step, p.steps) for p in previews] in ([(1, 3)], [(1, 3), (2, 3)])
    assert all(p.image.size == (512, 512) for p in previews)
    assert isinstance(result, Result) and result.timings["previews"] > 0
    plain = generate.run(vega, request(steps=3))
    assert np.array_equal(pixels(result.image), pixels(plain.image))
    assert "previews" not in plain.timings


def test_image_to_image_previews_its_denoising_steps(vega):
    source = Image.radial_gradient("L").convert("RGB")
    items = list(stream.stream(vega, request(image=source, steps=6, strength=0.5)))
    # int(6 × 0.5) = 3 denoising steps, as diffusers runs LCM (openvino.genai alone would run 6).
    assert [(p.step, p.steps) for p in items[:-1]] in ([(1, 3)], [(1, 3), (2, 3)])
    assert items[-1].image.size == (512, 512)


def test_stopping_ends_the_run_early_and_frees_the_model(vega):
    stop = threading.Event()
    run = stream.stream(vega, request(steps=8), stop=stop)
    assert next(run).step == 1
    stop.set()
    with pytest.raises(generate.Stopped) as stopped:
        list(run)
    assert stopped.value.done < 8 and stopped.value.total == 8
    assert not vega.lock.locked()
    assert generate.run(vega, request(steps=2)).image.size == (512, 512)


def test_a_consumer_that_goes_away_frees_the_model_without_waiting_for_it(vega):
    gate = threading.Event()  # holds the run inside its second step
    run = stream.stream(vega, request(steps=8),
                        on_step=lambda done, total: done < 2 or gate.wait(timeout=60))
    next(run)
    # gradio closes an abandoned generator on its event loop: closing must not wait for a step.
    closer = threading.Thread(target=run.close)
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive() and vega.lock.locked()  # closed while the step still runs
    gate.set()
    assert wait_for(lambda: not vega.lock.locked())  # the run ends at its next step
    assert generate.run(vega, request(steps=2)).image.size == (512, 512)


def test_runs_of_two_models_take_turns(vega, loaded):
    """One run at a time, whatever the model: a run of another model waits for the lock."""
    gate = threading.Event()
    run = stream.stream(vega, request(steps=8),
                        on_step=lambda done, total: done < 2 or gate.wait(timeout=60))
    next(run)  # the Vega run holds the lock, inside its second step
    other = threading.Thread(target=generate.run, args=(loaded, validate(Text2Image(
        prompt="a fox", model_id=loaded.spec.id, width=256, height=256))))
    other.start()
    other.join(timeout=5)  # the tiny model's run takes well under a second alone
    assert other.is_alive()
    gate.set()
    run.close()
    other.join(timeout=60)
    assert not other.is_alive()


def wait_for(condition, timeout=60) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_without_the_fast_decoder_there_are_no_previews(models_dir, tmp_path):
    shutil.copytree(models_dir / "tiny-vega" / "fp16", tmp_path / "tiny-vega" / "fp16")
    loaded = Registry(tmp_path).get("tiny-vega", "fp16")
    items = list(stream.stream(loaded, request(steps=2)))
    assert len(items) == 1 and isinstance(items[0], Result)


def test_a_consumer_that_stops_reading_never_holds_the_model(vega):
    """A stalled client takes the first preview and reads nothing more: the run goes on
    without it (a preview nobody took is replaced by the newer one), so the model's lock is
    free for everyone else once the run is done, and the result still waits for the client."""
    run = stream.stream(vega, request(steps=8))
    assert next(run).step == 1
    assert vega.lock.acquire(timeout=30)  # today's run is over; nobody waits on this client
    vega.lock.release()
    rest = list(run)
    assert isinstance(rest[-1], Result) and rest[-1].image.size == (512, 512)
    assert [isinstance(item, stream.Preview) for item in rest[:-1]] in ([], [True])
