"""Every tiny stand-in an offline first start serves (FP16, INT8, the Tiny Autoencoder, the
Segmind-VegaRT and SDXL-base stand-ins), so that each feature of the app works before any real
model is exported: `python -m export standins [--models-dir DIR] [-v]`.

The console gets one line per step; what the libraries print, warn or log while exporting
(tracer, PEFT, diffusers, transformers and NNCF warnings, progress bars) goes to
<models dir>/logs/export.log unless verbose."""

import logging
import sys
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from collections.abc import Callable, Iterable

from pipelines import catalogue

INT8_SAMPLES = 4  # calibration samples: the INT8 code path in seconds on the tiny model
# Top-level logger names of the libraries an export runs.
LIBRARIES = ("transformers", "diffusers", "torch", "nncf", "optimum", "peft", "huggingface_hub",
             "accelerate", "openvino")

OnStep = Callable[[int, int, "str | None"], None]  # (steps done, steps in all, next step's name)


@dataclass(frozen=True)
class StandIn:
    id: str  # a catalogue model or autoencoder
    variant: str

    @property
    def name(self) -> str:
        spec = catalogue.MODELS.get(self.id) or catalogue.AUTOENCODERS[self.id]
        return f"{spec.name}, {self.variant.upper()}"


# In order: each step may need the ones before it (INT8 quantizes the FP16 export; the INT8
# TAESD calibrates on the tiny model's latents).
STAND_IN_STEPS = (
    StandIn("tiny", "fp16"),
    StandIn("tiny-taesd", "fp16"),  # the fast decoder and previews
    StandIn("tiny-vega", "fp16"),  # the Segmind-VegaRT tab
    StandIn("tiny", "int8"),  # the FP16 vs INT8 tab
    StandIn("tiny-taesd", "int8"),
    StandIn("tiny-base", "fp16"),
)


@dataclass(frozen=True)
class Step:
    stand_in: StandIn
    models_dir: Path

    @property
    def name(self) -> str:
        return self.stand_in.name

    def done(self) -> bool:
        from pipelines.registry import Registry

        registry = Registry(self.models_dir, cache=False)
        if self.stand_in.id in catalogue.AUTOENCODERS:
            return registry.has_autoencoder(self.stand_in.id, self.stand_in.variant)
        return registry.is_exported(self.stand_in.id, self.stand_in.variant)

    def run(self) -> Path:
        from export import export_autoencoder, export_model

        model_id, variant = self.stand_in.id, self.stand_in.variant
        if model_id in catalogue.AUTOENCODERS:
            return export_autoencoder(model_id, self.models_dir, variant=variant,
                                      samples=INT8_SAMPLES)
        return export_model(model_id, variant, self.models_dir, samples=INT8_SAMPLES)


def missing(models_dir: Path, serving: Iterable[str] | None = None) -> list[Step]:
    """The steps whose output is not in the models folder yet, in order; with `serving` (stand-in
    ids), only those of these stand-ins and of their fast decoders."""
    needed = None if serving is None else {
        *serving, *(catalogue.get(m).fast_decoder for m in serving)}
    steps = [Step(stand_in, Path(models_dir)) for stand_in in STAND_IN_STEPS
             if needed is None or stand_in.id in needed]
    return [step for step in steps if not step.done()]


def build(models_dir: Path, on_step: OnStep | None = None, log: Path | None = None,
          verbose: bool = False, serving: Iterable[str] | None = None) -> list[Step]:
    """Run the missing steps (of the `serving` stand-ins, default all) in order; returns them.
    on_step(done, total, name) is called before each step and once at the end (name None).
    Prints one line per step (and one saying where the log is); safe in a background thread of
    a running app (see _routed)."""
    models_dir = Path(models_dir)
    steps = missing(models_dir, serving)
    if not steps:
        if on_step:
            on_step(0, 0, None)
        return []
    log = Path(log or models_dir / "logs" / "export.log")
    console = sys.stdout
    where = "shown below (verbose)" if verbose else f"in {log}"
    print(f"Building {len(steps)} stand-in step(s) in {models_dir}; library output {where}",
          file=console, flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as log_file, \
            (nullcontext() if verbose else _routed(log_file)):
        for done, step in enumerate(steps):
            if on_step:
                on_step(done, len(steps), step.name)
            _run_step(step, f"[{done + 1}/{len(steps)}]", console, log_file)
    if on_step:
        on_step(len(steps), len(steps), None)
    return steps


def _run_step(step: Step, counter: str, console: TextIO, log_file: TextIO) -> None:
    """One console line per step, written whole once the step ends: a running app's other
    threads may print meanwhile, and a line left open would take their text."""
    print(f"\n{time.strftime('%Y-%m-%d %H:%M:%S')} {counter} exporting {step.name}",
          file=log_file, flush=True)
    start = time.perf_counter()
    try:
        step.run()
    except BaseException:
        print(f"{counter} exporting {step.name}… failed (details above, or in {log_file.name})",
              file=console, flush=True)
        raise
    print(f"{counter} exporting {step.name}… {time.perf_counter() - start:.0f} s", file=console,
          flush=True)


@contextmanager
def _routed(log_file: TextIO):
    """While the block runs, what this thread's libraries print, warn or log goes to
    `log_file`. All Python-level, no file-descriptor redirection (os.dup2 would take a running
    app's console too); nothing the export runs writes to fd 1 or 2 from C++ (checked on the
    tiny stand-ins: tests/export/test_standins.py). Three routes:
    - warnings.showwarning: this thread's warnings (torch.jit TracerWarning, PEFT, diffusers)
      to the log, other threads' as before;
    - library loggers with their own console handler (transformers, diffusers, torch, NNCF):
      that handler is swapped for the log while building, every thread's records included;
    - sys.stdout and sys.stderr (still needed: tqdm bars, NNCF's rich progress, print, the
      logging module's last-resort handler resolve them when writing): replaced by a stream
      that sends this thread's writes to the log and other threads' (the app's) to the console.
    One build at a time per process."""
    thread = threading.get_ident()
    saved_streams, saved_showwarning = (sys.stdout, sys.stderr), warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if threading.get_ident() != thread:
            return saved_showwarning(message, category, filename, lineno, file, line)
        log_file.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = showwarning
    sys.stdout, sys.stderr = (_ThreadStream(stream, log_file, thread) for stream in saved_streams)
    log_handler = logging.StreamHandler(log_file)
    log_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    swapped = []
    try:
        swapped = _swap_console_handlers(log_handler)  # imports them: routed already
        yield
    finally:
        sys.stdout, sys.stderr = saved_streams
        warnings.showwarning = saved_showwarning
        for logger, handlers in swapped:
            logger.handlers[:] = handlers
        _unroute_handlers()
        log_file.flush()


def _swap_console_handlers(log_handler: logging.Handler) -> list:
    """Give the export libraries' loggers that write to a console themselves the log handler
    instead; returns (logger, its handlers) to put back. Only theirs: the app's own loggers
    (gradio, uvicorn) keep the console. The libraries are imported first: transformers,
    diffusers and torch add their console handlers when imported."""
    import diffusers  # noqa: F401
    import nncf  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    loggers = [logger for name, logger in logging.root.manager.loggerDict.items()
               if name.split(".")[0] in LIBRARIES and isinstance(logger, logging.Logger)]
    swapped = []
    for logger in loggers:
        handlers = list(logger.handlers)
        # A plain StreamHandler writes to a console (its stream is whichever sys.stderr was
        # when the library was imported); file handlers and the like stay.
        kept = [h for h in handlers if type(h) is not logging.StreamHandler]
        if len(kept) < len(handlers):
            swapped.append((logger, handlers))
            logger.handlers[:] = kept + [log_handler]
    return swapped


def _unroute_handlers() -> None:
    """Handlers made while routed (libraries imported during the build) hold the routing
    stream: give them the console it stood for."""
    loggers = [logging.root, *logging.root.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if isinstance(getattr(handler, "stream", None), _ThreadStream):
                handler.setStream(handler.stream.console)


class _ThreadStream:
    """sys.stdout or sys.stderr while building: the building thread's writes go to the log,
    other threads' to the stream it replaces."""

    def __init__(self, console: TextIO, log_file: TextIO, thread: int):
        self.console, self._log, self._thread = console, log_file, thread

    def _target(self) -> TextIO:
        mine = threading.get_ident() == self._thread and not self._log.closed
        return self._log if mine else self.console

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        # False for every thread: rich's refresh thread (NNCF's progress bars) would otherwise
        # draw on the console from a thread of its own.
        return False

    def __getattr__(self, name):  # encoding, fileno, ... of the console stream
        return getattr(self.console, name)
