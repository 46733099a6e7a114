"""The Live tab's frame function, called directly on the session's stand-ins: a frame in, an
image of the chosen size out; refusals as text (a stream goes on after one); the newest frame
only; a missing Tiny Autoencoder named with its export command."""

import asyncio
import threading

import numpy as np
import pytest
from PIL import Image

from pipelines import generate
from pipelines.engine import LocalEngine
from pipelines.registry import Registry
from ui import examples
from ui.live import Live, missing_decoder, sketch_composite

PICTURE = Image.open(examples.IMAGE).convert("RGB")
SETTINGS = dict(prompt="a castle, watercolor", strength=0.5, steps=2, seed=3, variant="fp16",
                model_id="tiny")


@pytest.fixture
def live(registry):
    return Live(LocalEngine(registry))


def frame(live, session, picture, **settings):
    """One frame, as gradio awaits it (on an event loop of its own here)."""
    return asyncio.run(live.frame(session, picture, **settings))


async def until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("size", [256, 384, 512])
def test_a_frame_comes_back_at_the_chosen_size(live, size):
    camera = Image.fromarray(np.asarray(PICTURE.resize((1920, 1440))))  # a webcam's 4:3 frame
    image, info = frame(live, "sizes", camera, size=size, **SETTINGS)
    assert image.size == (size, size)
    assert "last frame" in info and "decoder" in info and f"{size}×{size}" in info


def test_frames_run_through_the_tiny_autoencoder_on_the_kept_prompt(live, monkeypatch):
    requests = []
    real_run = generate.run
    monkeypatch.setattr(generate, "run", lambda loaded, request, *a, **k: (
        requests.append(request), real_run(loaded, request, *a, **k))[1])
    frame(live, "cached", PICTURE, size=256, **SETTINGS)
    _, info = frame(live, "cached", PICTURE, size=256, **SETTINGS)
    assert all(r.fast_decoder and int(r.steps * r.strength) == 1 for r in requests)
    assert all(r.reuse_prompt for r in requests)  # the stream's encodings are kept
    assert "frames/s" in info


def test_a_bad_setting_is_a_message_not_an_error(live):
    assert frame(live, "bad", PICTURE, size=384, **{**SETTINGS, "prompt": " "}) == (
        None, "⚠ Please enter a prompt: describe the image you want.")
    image, info = frame(live, "bad", PICTURE, size=100, **SETTINGS)
    assert image is None and "must be between 256 and" in info
    assert frame(live, "bad", None, size=384, **SETTINGS) == (None, None)  # no frame yet


def test_a_frame_arriving_while_one_runs_replaces_the_waiting_one(live, monkeypatch):
    started, release, runs = threading.Event(), threading.Event(), []
    real_run = generate.run

    def held_run(loaded, request, *args, **kwargs):
        runs.append(request.seed)
        started.set()
        release.wait(timeout=120)  # the first frame holds the model while others arrive
        return real_run(loaded, request, *args, **kwargs)

    monkeypatch.setattr(generate, "run", held_run)
    results = {}

    async def send(seed):
        results[seed] = await live.frame("burst", PICTURE, size=256, **{**SETTINGS, "seed": seed})

    async def burst():
        first = asyncio.create_task(send(0))
        await asyncio.wait_for(until(started.is_set), timeout=120)  # it holds the model now
        later = [asyncio.create_task(send(seed)) for seed in (1, 2, 3)]
        # Two superseded, answered while the first frame still runs.
        await asyncio.wait_for(until(lambda: len(results) >= 2), timeout=120)
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *later), timeout=120)

    asyncio.run(burst())
    assert runs[0] == 0 and len(runs) == 2  # the first frame and one newer, never a backlog
    assert sum(results[seed] == (None, None) for seed in (1, 2, 3)) == 2
    assert results[runs[1]][0].size == (256, 256)  # the newest frame's image


def test_without_the_tiny_autoencoder_the_tab_says_how_to_export_it(models_dir, tmp_path):
    (tmp_path / "tiny").symlink_to(models_dir / "tiny")  # the model, but no tiny-taesd
    registry = Registry(tmp_path)
    message = missing_decoder(registry, "tiny", "fp16")
    assert "not exported" in message and "`python -m export tiny-taesd`" in message
    image, info = frame(Live(LocalEngine(registry)), "no-taesd", PICTURE, size=384, **SETTINGS)
    assert image is None and info == f"⚠ {message}"
    assert registry.loaded() == []  # refused before loading anything: no full-VAE stream


def test_a_blank_sketch_waits_for_a_stroke():
    blank = np.zeros((64, 64, 4), np.uint8)  # a transparent canvas
    assert sketch_composite({"composite": blank, "layers": [], "background": None}) is None
    assert sketch_composite(None) is None
    white = np.full((64, 64, 3), 255, np.uint8)
    assert sketch_composite({"composite": white}) is None
    drawn = white.copy()
    drawn[10:20, 10:40] = 0
    assert sketch_composite({"composite": drawn}).size == (64, 64)
