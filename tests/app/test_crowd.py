"""A crowd on the tiny stand-in, spoken to as the page's JavaScript does (the queue's join and
the session's message stream): 48 real-time sessions and 4 Live sketch streams at once beside
3 streaming batches of 8 steps with previews (the Segmind-VegaRT tab's), one of them stopped.
Every call is answered (an image, or a message such as "busy, try again"), nothing hangs, and a
plain request right after returns within seconds. Real-time and Live wait on the event loop, not
on gradio's worker threads (40), and a run never waits on a consumer while it holds the model."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageDraw

from benchmarks.page import App, Page, answered

CROWD_SECONDS = 15  # each real-time session and Live stream sends for this long
DEADLINE = 300  # seconds for the whole crowd: a hang shows as a timeout, not a stuck suite


@pytest.fixture(scope="module")
def url(models_dir):
    import app
    from ui.demo import LAUNCH_OPTIONS

    demo = app.create_demo(app.parse_settings(["--models-dir", str(models_dir)]))
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **LAUNCH_OPTIONS)
    yield demo.local_url
    demo.close()


def realtime(page: Page, until: float) -> list[str]:
    """A real-time session typing: a request as soon as the last is answered, until then."""
    outcomes = []
    while time.monotonic() < until:
        outcomes.append(answered(page.call(
            "realtime", True, f"a lighthouse, take {len(outcomes)}", len(outcomes), 1, 256, 256,
            "fp16", True, "tiny", 0.0, None)))
    return outcomes


def live(page: Page, until: float) -> list[str]:
    """A Live sketch stream: a frame after each stroke, one after the other, until then."""
    outcomes = []
    while time.monotonic() < until:
        frame = len(outcomes)
        sketch = Image.new("RGB", (256, 256), "white")
        ImageDraw.Draw(sketch).ellipse((40 + frame % 10 * 10, 40, 200, 200), fill="red")
        outcomes.append(answered(page.call(
            "sketch_frame", {"background": None, "layers": [], "composite": page.upload(sketch)},
            "a red apple", 0.5, 2, 256, frame, "fp16", "tiny")))
    return outcomes


def batch(page: Page, stop: bool) -> tuple[dict, int]:
    """A streaming batch of 2 at 8 steps on the Vega stand-in (a preview after most steps):
    (its last message, messages it streamed); stop=True presses Stop at its first preview."""
    streamed = []

    def on_message(message):
        if message["msg"] == "process_generating":
            streamed.append(message)
            if stop and len(streamed) == 1:
                page.stop("vega_stop")

    final = page.call("vega_text_to_image", "a castle at dusk", None, 8, 1.0, 512, 512, 5, False,
                      "fp16", True, 2, on_message=on_message)
    return final, len(streamed)


def test_a_crowd_is_answered_and_the_server_stays_responsive(url):
    page = App(url).page
    page().call("text_to_image", "warm up", 1, False, 1, 256, 256, "fp16", True, "tiny", 0.0,
                None, 1)  # the model's load is not the crowd's
    began = time.monotonic()
    until = began + CROWD_SECONDS
    with ThreadPoolExecutor(max_workers=64) as pool:
        crowd = [pool.submit(realtime, page(), until) for _ in range(48)]
        streams = [pool.submit(live, page(), until) for _ in range(4)]
        time.sleep(1)  # the crowd is there when the batches come
        batches = [pool.submit(batch, page(), stop=i == 0) for i in range(3)]
        outcomes = [o for job in crowd for o in job.result(timeout=DEADLINE)]
        frames = [job.result(timeout=DEADLINE) for job in streams]
        batched = [job.result(timeout=DEADLINE) for job in batches]
    assert time.monotonic() - began < DEADLINE
    # Real-time: images, and for the sessions beyond the group's bound, "busy, try again".
    assert "image" in outcomes
    assert all(o == "image" or "try again" in o for o in outcomes), set(outcomes)
    assert all(o == "image" or "try again" in o for stream in frames for o in stream)
    assert any("image" in stream for stream in frames)
    # The batches streamed previews; the stopped one says so, the others made their images.
    assert all(streamed >= 1 for _, streamed in batched)
    assert [answered(final) for final, _ in batched[1:]] == ["image", "image"]
    stopped = batched[0][0]
    assert stopped["success"] and "Stopped" in json.dumps(stopped["output"]["data"])
    asked = time.monotonic()
    assert answered(page().call("text_to_image", "right after", 2, False, 1, 256, 256, "fp16",
                                True, "tiny", 0.0, None, 1)) == "image"
    assert time.monotonic() - asked < 30
