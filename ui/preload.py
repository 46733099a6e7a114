"""--preload: the model the Text-to-Image tab opens on is loaded as the app starts, and run
once on its smallest image (with static shapes, on its default size), in the background while
the page is up. A Space that wakes, or an app restarted, then answers its first user without
the load and without the first run's weight repacking (OpenVINO repacks a model's weights at
its first run, whatever the size)."""

import logging
import threading
from collections.abc import Callable

from pipelines.requests import Text2Image, validate

log = logging.getLogger(__name__)


def start(engine, choose: Callable[[], tuple[str, str]], build=None) -> threading.Thread:
    """Load the model and variant choose() names on engine, and run it once, on a thread of
    its own; where that model is a stand-in the build `build` is still making, once it is
    built."""
    thread = threading.Thread(target=_preload, args=(engine, choose, build), name="preload",
                              daemon=True)
    thread.start()
    return thread


def _preload(engine, choose: Callable[[], tuple[str, str]], build) -> None:
    model_id, variant = choose()
    try:
        if build is not None and not engine.registry.available(model_id, variant):
            build.finished.wait()  # the opening model is a stand-in still being built
            model_id, variant = choose()
        spec = engine.registry.catalogue.get(model_id)
        # Dynamic shapes: the smallest image is enough to warm every size. Static shapes: the
        # model is compiled for its default size, what users ask for; another would recompile.
        side = int(spec.size.default if engine.registry.static_shapes else spec.size.min)
        steps = int(spec.steps.min)
        request = validate(Text2Image(prompt="a warm-up", model_id=model_id, variant=variant,
                                      width=side, height=side, steps=steps, seed=0),
                           engine.registry.catalogue)
        result = engine.run(request)
    except Exception:  # any failure: the app still serves, the first request loads it
        log.exception("Preloading %s (%s) failed", model_id, variant)
        return
    log.info("Preloaded %s (%s): %s", model_id, variant, result.timings)
