"""A generation as a stream: its previews as they come, then its result, for a streaming UI
event. Written by hand: diffusers reports steps through a callback, and a generator cannot yield
from inside one, so the run goes to a worker thread and hands each item over."""

import contextvars
import queue
import threading
from dataclasses import dataclass
from typing import Iterator

from PIL import Image

from pipelines import generate
from pipelines.requests import Result, Text2Image


@dataclass
class Preview:
    image: Image.Image
    step: int  # steps done
    steps: int  # in all


def stream(loaded, request: Text2Image, on_step: generate.OnStep | None = None,
           stop: threading.Event | None = None) -> Iterator[Preview | Result]:
    """Yield a Preview after every step (where the model's fast decoder is exported), then the
    Result. Setting `stop` ends the run at its next step, raising generate.Stopped here; so does
    closing the generator, so a consumer that goes away never leaves the model locked."""
    stop = stop or threading.Event()
    # One item at a time: the run waits until the consumer has taken the previous preview, so
    # a stop is seen within a step or two of the preview the user last saw.
    handoff: queue.Queue = queue.Queue(maxsize=1)

    def work():
        try:
            handoff.put(generate.run(
                loaded, request, on_step, stop=stop,
                on_preview=lambda image, done, total: handoff.put(Preview(image, done, total))))
        except Exception as e:  # noqa: BLE001 -- handed to the consumer, raised there
            handoff.put(e)

    # copy_context: the run reports progress through the caller's context (gradio's Progress).
    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if isinstance(item, Exception):
                raise item
            yield item
            if isinstance(item, Result):
                return
    finally:
        stop.set()
        while worker.is_alive():  # unblock its last hand-over; it stops at the next step
            try:
                handoff.get(timeout=0.1)
            except queue.Empty:
                pass
