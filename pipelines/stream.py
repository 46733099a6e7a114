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
from pipelines.requests import Result, Text2Image, seeds, single


@dataclass
class Preview:
    image: Image.Image
    step: int  # steps done
    steps: int  # in all
    index: int = 0  # the image of the batch it belongs to, from 0
    served_by: str = ""  # the Ray Serve replica making it; "" in this process


def stream(loaded, request: Text2Image, on_step: generate.OnStep | None = None,
           stop: threading.Event | None = None) -> Iterator[Preview | Result]:
    """For each image of the request (a batch: one after another, as generate.run_all), yield
    a Preview after every step (where the model's fast decoder is exported), then its Result.
    Setting `stop` ends the run at its next step, raising generate.Stopped here; so does
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
            for index, seed in enumerate(seeds(request)):
                hand_over(generate.run(
                    loaded, single(request, seed), on_step, stop=stop,
                    on_preview=lambda image, done, total: hand_over(
                        Preview(image, done, total, index))))
        except Exception as e:  # noqa: BLE001 -- handed to the consumer, raised there
            hand_over(e)

    # copy_context: the run reports progress through the caller's context (gradio's Progress).
    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True)
    worker.start()
    try:
        results = 0
        while results < request.images:
            item = handoff.get()
            if isinstance(item, Exception):
                raise item
            yield item
            results += isinstance(item, Result)
    finally:
        # Never wait for the worker here: gradio closes an abandoned generator on its event
        # loop. The worker sees the flag at its next step and releases the model.
        stop.set()
        abandoned.set()
