"""A generation as a stream: its previews as they come, then its result, for a streaming UI
event. Written by hand: diffusers reports steps through a callback, and a generator cannot yield
from inside one, so the run goes to a worker thread and hands each item over."""

import collections
import contextvars
import threading
from dataclasses import dataclass
from collections.abc import Iterator

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


class Handoff:
    """From the run's worker to the consumer, never making the run wait: a preview the
    consumer has not taken yet is replaced by the newer one (the run holds the model's lock
    while it previews, so a slow or stalled client must not hold everyone up), results and
    errors are kept in order. Written by hand: queue.Queue blocks or drops, it never replaces."""

    def __init__(self):
        self._items: collections.deque = collections.deque()
        self._ready = threading.Condition()

    def put(self, item) -> None:
        with self._ready:
            if isinstance(item, Preview) and self._items and isinstance(self._items[-1], Preview):
                self._items[-1] = item  # the one nobody took is stale now
            else:
                self._items.append(item)
            self._ready.notify()

    def get(self):
        with self._ready:
            self._ready.wait_for(lambda: self._items)
            return self._items.popleft()


def stream(loaded, request: Text2Image, on_step: generate.OnStep | None = None,
           stop: threading.Event | None = None) -> Iterator[Preview | Result]:
    """For each image of the request (a batch: one after another, as generate.run_all), yield
    a Preview after a step (where the model's fast decoder is exported: the newest one when
    the consumer is slower than the steps), then its Result. Setting `stop` ends the run at its
    next step, raising generate.Stopped here; so does closing the generator, so a consumer
    that goes away never leaves the model locked."""
    stop = stop or threading.Event()
    handoff = Handoff()

    def work():
        try:
            for index, seed in enumerate(seeds(request)):
                handoff.put(generate.run(
                    loaded, single(request, seed), on_step, stop=stop,
                    on_preview=lambda image, done, total, index=index: handoff.put(
                        Preview(image, done, total, index))))
        except Exception as e:  # noqa: BLE001 -- handed to the consumer, raised there
            handoff.put(e)

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
