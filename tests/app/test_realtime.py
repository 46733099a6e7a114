"""Real-time mode through gradio_client: a burst of requests never builds a backlog (one run in
progress, one waiting, the rest superseded), and the newest prompt is the one generated."""

import threading
import time

import numpy as np
from gradio_client import Client
from PIL import Image

from pipelines import generate


def realtime(client, prompt, enabled=True, seed=5, steps=1, width=256, height=256):
    return client.submit(enabled, prompt, seed, steps, width, height, api_name="/realtime")


def wait_until(condition, timeout=120):
    """Waits for the server to reach a state; fails after the timeout rather than hanging."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server did not reach the expected state"
        time.sleep(0.05)


def test_a_burst_runs_the_first_and_the_newest_prompt_only(app_url, monkeypatch):
    runs, release = [], threading.Event()
    real_run = generate.run

    def counted_run(loaded, request, on_step=None):
        runs.append(request.prompt)
        release.wait(timeout=120)  # the first run holds the model while the burst arrives
        return real_run(loaded, request, on_step)

    monkeypatch.setattr(generate, "run", counted_run)
    client = Client(app_url, verbose=False)  # one client: one session
    first = realtime(client, "a red")
    wait_until(lambda: runs == ["a red"])
    prompts = [f"a red fox {'!' * n}" for n in range(1, 9)]
    burst = [realtime(client, prompt) for prompt in prompts]
    # All but the newest to arrive are superseded, and answered, while the first run still
    # holds the model (gradio_client sends each from a thread of its own: arrival decides).
    wait_until(lambda: sum(job.done() for job in burst) == len(burst) - 1)
    newest = next(job for job in burst if not job.done())
    release.set()
    path, seed, _, _ = newest.result(timeout=120)
    first.result(timeout=120)
    # What ran second is the newest request's prompt, and its image is what it was answered.
    assert runs == ["a red", prompts[burst.index(newest)]]
    assert Image.open(path).size == (256, 256) and seed == 5
    monkeypatch.setattr(generate, "run", real_run)
    alone, _, _, _ = realtime(client, prompts[burst.index(newest)]).result(timeout=120)
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(alone)))


def test_realtime_off_or_empty_generates_nothing(app_url, monkeypatch):
    runs = []
    monkeypatch.setattr(generate, "run", lambda *args, **kwargs: runs.append(args))
    client = Client(app_url, verbose=False)
    realtime(client, "a red fox", enabled=False).result(timeout=60)
    realtime(client, "   ").result(timeout=60)
    realtime(client, None).result(timeout=60)  # an API client's null: no text, as empty
    assert runs == []


def test_realtime_with_the_same_seed_makes_the_same_image(app_url):
    client = Client(app_url, verbose=False)
    first = realtime(client, "a blue bird").result(timeout=120)
    again = realtime(client, "a blue bird").result(timeout=120)
    assert np.array_equal(np.asarray(Image.open(first[0])), np.asarray(Image.open(again[0])))
