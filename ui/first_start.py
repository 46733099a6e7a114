"""An offline first start: the page comes up at once while the stand-ins every tab needs (FP16,
INT8, Tiny Autoencoder, the Vega and SDXL-base stand-ins) are built in the background; the page
shows the progress, and each part is offered as soon as it is built."""

import importlib.util
import logging
import threading
from collections.abc import Callable

import gradio as gr

# (steps done, steps in all, the step starting now; None at the end)
OnStep = Callable[[int, int, str | None], None]
log = logging.getLogger(__name__)


class StandInBuild:
    """One background build and its progress, for one app. `run(on_step)` does the work."""

    def __init__(self, run: Callable[[OnStep], None]):
        self._run = run
        self.done, self.total, self.current = 0, 0, ""
        self.error: Exception | None = None
        self.finished = threading.Event()

    def start(self) -> "StandInBuild":
        threading.Thread(target=self._work, name="stand-in build", daemon=True).start()
        return self

    def _work(self) -> None:
        try:
            self._run(self._on_step)
        except ModuleNotFoundError as e:  # a serving-only install: what to do, no traceback
            log.error("Building the stand-ins failed: %s", e)
            self.error = e
        except Exception as e:  # noqa: BLE001 -- shown in the page; the app serves what it has
            log.exception("Building the stand-ins failed")
            self.error = e
        finally:
            self.finished.set()

    def _on_step(self, done: int, total: int, name: str) -> None:
        self.done, self.total, self.current = done, total, name

    def status(self) -> str:
        if self.error is not None:
            return (f"⚠ Building the stand-ins stopped at step {self.done + 1} of {self.total} "
                    f"({self.current}): {type(self.error).__name__}: {self.error}. The app "
                    f"serves what was built; `python -m export standins` tries again.")
        if self.finished.is_set():
            return f"✓ All {self.total} stand-in parts are built and offered."
        return (f"⏳ First start: building the offline stand-ins, step {self.done + 1} of "
                f"{max(self.total, 1)}: {self.current or 'starting'}… Each part is offered as "
                f"soon as it is built.")


def stand_in_build(models_dir, serving: list[str], verbose: bool = False) -> StandInBuild | None:
    """A build of what the stand-ins the app serves (and their fast decoders) lack in
    models_dir, or None when nothing is missing; verbose: the libraries' warnings on the
    console rather than only in the log file."""
    from export import standins

    if not serving or not standins.missing(models_dir, serving):
        return None
    if importlib.util.find_spec("optimum") is None:  # a serving-only install
        return StandInBuild(_needs_export_requirements)
    return StandInBuild(lambda on_step: standins.build(models_dir, on_step=on_step,
                                                       verbose=verbose, serving=serving))


def _needs_export_requirements(on_step: OnStep) -> None:
    on_step(0, 1, "checking the export requirements")
    raise ModuleNotFoundError(
        "building the stand-ins exports them with optimum-intel, which a serving-only install "
        "lacks: `pip install -r requirements-export.txt`, then start the app again")


def progress(build: StandInBuild) -> gr.Number:
    """The build's progress line, refreshed every second until the build is over; returns a
    hidden number (steps done) whose change event tells the tabs to offer what is new."""
    note = gr.Markdown(build.status(), elem_id="build-progress")
    done = gr.Number(build.done, visible=False)
    timer = gr.Timer(1.0)
    timer.tick(lambda: (build.status(), build.done + build.finished.is_set(),
                        gr.Timer(active=not build.finished.is_set())),
               outputs=[note, done, timer], queue=False, api_visibility="private")
    return done
