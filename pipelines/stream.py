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
    abandoned = threading.Event()  # the consumer is gone: nothing more is handed over

    def hand_over(item) -> None:
        """Wait for the consumer to take the previous item; once it is gone, drop the item,
        so the run goes on to its next step, sees the stop flag and frees the model."""
        while not abandoned.is_set():
            try:
                return handoff.put(item, timeout=0.1)
            except queue.Full:
                pass

    def work():
        try:
            hand_over(generate.run(
                loaded, request, on_step, stop=stop,
                on_preview=lambda image, done, total: hand_over(Preview(image, done, total))))
        except Exception as e:  # noqa: BLE001 -- handed to the consumer, raised there
            hand_over(e)

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
        # Never wait for the worker here: gradio closes an abandoned generator on its event
        # loop. The worker sees the flag at its next step and releases the model.
        stop.set()
        abandoned.set()
