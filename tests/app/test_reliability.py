"""The running app under load, with a full queue, and what it refuses to serve. Loopback only;
every loop is bounded in count and time."""

import os
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from pipelines.engine import LocalEngine
from pipelines.requests import MAX_UPLOAD_BYTES, Text2Image
from ui import examples
from ui.demo import LAUNCH_OPTIONS, build_demo
from ui.running import Runs, stream_request

JOB_TIMEOUT = 120  # seconds; a stand-in request takes well under one


def generate(client, seed):
    return client.predict("a red fox", seed, False, 1, 256, 256, api_name="/text_to_image")


def test_eight_clients_five_requests_each_get_their_own_images(app_url):
    def one_client(seed):  # a user waits for each image before asking for the next
        client = Client(app_url, verbose=False)
        return [np.asarray(Image.open(generate(client, seed)[0])) for _ in range(5)]

    seeds = range(100, 108)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(zip(seeds, pool.map(one_client, seeds)))
    assert sum(len(images) for images in results.values()) == 40
    for images in results.values():
        assert all(image.shape == (256, 256, 3) for image in images)
        # Each client's seed reproduces its own image: nothing was mixed up between clients.
        assert all(np.array_equal(image, images[0]) for image in images)
    firsts = [images[0].tobytes() for images in results.values()]
    assert len(set(firsts)) == 8


def test_a_full_queue_answers_busy_and_the_app_recovers(registry):
    demo = build_demo(registry, queue_size=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True,
                **LAUNCH_OPTIONS)
    try:
        client = Client(demo.local_url, verbose=False)
        loaded = registry.get("tiny", "fp16")
        with loaded.lock:  # the model is busy: one job waits on it, two queue, the rest are refused
            # A seed each: identical results share one content-hashed cache file, which gradio
            # rewrites while another client may be downloading it (an empty download, seen once).
            jobs = [client.submit("a cat", seed, False, 1, 256, 256, api_name="/text_to_image")
                    for seed in range(1, 9)]
            deadline = time.monotonic() + JOB_TIMEOUT
            while sum(job.done() for job in jobs) < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            # Another user's Stop skips the full queue, as the page sends it (gradio_client
            # always joins the queue).
            stop = httpx.post(f"{demo.local_url}gradio_api/run/stop", timeout=30,
                              json={"data": [], "session_hash": "another-user"})
            assert stop.status_code == 200, stop.text
        refused, served = [], []
        for job in jobs:
            try:
                served.append(job.result(timeout=JOB_TIMEOUT))
            except Exception as error:  # noqa: BLE001 -- QueueError for a full queue, checked
                refused.append(str(error))
        assert len(refused) == 5 and all("Queue is full" in message for message in refused)
        assert len(served) == 3
        assert all(Image.open(path).size == (256, 256) for path, *_ in served)
        assert Image.open(generate(client, 2)[0]).size == (256, 256)
    finally:
        demo.close()


@pytest.mark.parametrize("path", [
    lambda models_dir: models_dir / "tiny" / "fp16" / "unet" / "openvino_model.xml",
    lambda models_dir: models_dir / "tiny" / "fp16" / "manifest.json",
    lambda models_dir: examples.ASSETS.parent / "app.py",
    lambda models_dir: examples.ASSETS.parent / ".env",
    lambda models_dir: "/etc/passwd",
])
def test_private_files_are_not_served(app_url, models_dir, path):
    private = Path(path(models_dir))
    response = httpx.get(f"{app_url}gradio_api/file={private}", timeout=30)
    assert response.status_code in (403, 404)
    if private.exists():  # the answer names the path at most, never holds the file
        assert private.read_bytes()[:200] not in response.content


def test_assets_are_served(app_url):
    response = httpx.get(f"{app_url}gradio_api/file={examples.IMAGE}", timeout=30)
    assert response.status_code == 200 and response.content[:4] == b"\x89PNG"


def test_uploads_over_the_size_cap_are_refused(app_url, tmp_path):
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="(?i)size|large"):
        client.predict(handle_file(str(big)), "a cat", 0.5, 2, 1, False,
                       api_name="/image_to_image")
    assert Image.open(generate(client, 3)[0]).size == (256, 256)


def test_rest_routes_cannot_skip_the_queue(app_url):
    response = httpx.post(f"{app_url}gradio_api/run/text_to_image",
                          json={"data": ["a cat", 1, False, 1, 256, 256]}, timeout=30)
    # Refused, saying how: through the queue, where one run at a time holds.
    assert response.status_code == 404 and "join the queue" in response.text
    assert not os.environ.get("GRADIO_ALLOWED_PATHS")


def test_stop_pressed_while_the_model_loads_is_not_lost(registry):
    runs, session = Runs(), "a-session"

    class StopWhileLoading(LocalEngine):  # the user presses Stop during the first load
        def load(self, *args, **kwargs):
            runs.stop(session)
            return super().load(*args, **kwargs)

    request = Text2Image(prompt="a red fox", model_id="tiny", seed=1, width=256, height=256)
    outputs = list(stream_request(StopWhileLoading(registry), request, runs, session,
                                      progress=lambda *args, **kwargs: None))
    assert len(outputs) == 1 and outputs[0][2].startswith("⏹ Stopped before the first step")
    # The flag went with the run: the session's next run goes through.
    *_, (image, seed, _, _) = stream_request(LocalEngine(registry), request, runs, session,
                                              progress=lambda *args, **kwargs: None)
    assert Image.open(image).size == (256, 256) and seed == 1


def test_stop_stops_the_run_of_its_own_tab_only(registry):
    """One browser session, two tabs: Stop in the Text-to-Image tab leaves the Segmind-VegaRT
    run going; the VegaRT tab's own Stop ends it."""
    demo = build_demo(registry)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **LAUNCH_OPTIONS)
    try:
        client = Client(demo.local_url, verbose=False)  # one client: one session
        loaded = registry.get("tiny-vega", "fp16")

        def vega_run_stopped_by(stop_api: str) -> str:
            with loaded.lock:  # the run waits for the model, its Stop flag already set up
                job = client.submit("a red fox", "", 3, 1.0, 512, 512, 4, False, "fp16", True,
                                    api_name="/vega_text_to_image")
                deadline = time.monotonic() + JOB_TIMEOUT
                while "Loading" not in str(job.status().progress_data) and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)
                client.predict(api_name=stop_api)
            return job.result(timeout=JOB_TIMEOUT)[2]

        assert "in all" in vega_run_stopped_by("/stop")  # another tab's Stop: not this run
        assert vega_run_stopped_by("/vega_stop").startswith("⏹ Stopped")
    finally:
        demo.close()
