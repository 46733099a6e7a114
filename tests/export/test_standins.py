"""What a first start builds: every stand-in step, in order, with one console line per step and
the libraries' output in the log file."""

import logging
import re
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from tqdm import tqdm

from export import standins
from pipelines.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"\[(\d)/(\d)\] exporting (.+)… \d+ s")


@pytest.fixture(scope="module")
def built(models_dir, tmp_path_factory):
    """A models folder made by `python -m export standins` (a child process: its console is
    what a user sees) and that run's output; the session's folder when conftest built it with
    standins.build (its log is there), to build the stand-ins only once."""
    log = models_dir / "logs" / "export.log"
    total = len(standins.STAND_IN_STEPS)
    if log.is_file() and f"[{total}/{total}] exporting" in log.read_text():  # built all there
        return models_dir, None
    folder = tmp_path_factory.mktemp("standins")
    done = subprocess.run([sys.executable, "-m", "export", "standins", "--models-dir",
                           str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, done


def test_build_makes_every_step_once_quietly(built):
    folder, done = built
    registry = Registry(folder)
    for model_id, variant in (("tiny", "fp16"), ("tiny", "int8"), ("tiny-vega", "fp16"),
                              ("tiny-base", "fp16")):
        assert registry.is_exported(model_id, variant)
    assert registry.has_autoencoder("tiny-taesd") and registry.has_autoencoder("tiny-taesd", "int8")
    assert standins.missing(folder) == []
    log = (folder / "logs" / "export.log").read_text()
    # diffusers' log record and progress bar, NNCF's progress bar (pytest.ini ignores torch.jit's
    # TracerWarning in this process; a child process logs those too).
    for noise in ("WARNING diffusers", "Loading pipeline components", "Statistics collection"):
        assert noise in log
    assert done is None or "TracerWarning" in log
    if done is not None:
        first, *lines = done.stdout.splitlines()
        assert str(folder / "logs" / "export.log") in first
        steps = [LINE.fullmatch(line).groups() for line in lines]
        assert steps == [(str(i), "6", step.name)
                         for i, step in enumerate(standins.STAND_IN_STEPS, 1)]
        assert done.stderr == ""  # nothing else reached the terminal, not even from C++
    calls = []
    assert standins.build(folder, on_step=lambda *args: calls.append(args)) == []
    assert calls == [(0, 0, None)]


@dataclass(frozen=True)
class NoisyStep:
    """Prints, warns, logs and shows a progress bar, as the export libraries do."""
    name: str
    app_printed: threading.Event | None = None

    def run(self):
        print("a library's print")
        warnings.warn(f"a library warning from {self.name}", stacklevel=1)
        logging.getLogger("transformers.models.clip").warning("a transformers warning")
        for _ in tqdm(range(3), desc="a progress bar"):
            pass
        if self.app_printed is not None:
            self.app_printed.wait(10)


def test_the_console_gets_one_line_per_step_even_from_a_background_thread(tmp_path,
                                                                          monkeypatch, capfd):
    import transformers  # its logger writes to the console itself  # noqa: F401

    app_printed = threading.Event()
    steps = [NoisyStep("First step"), NoisyStep("Second step", app_printed)]
    monkeypatch.setattr(standins, "missing", lambda folder, serving=None: steps)
    calls = []
    builder = threading.Thread(target=standins.build, args=(tmp_path,),
                               kwargs=dict(on_step=lambda *args: calls.append(args)))
    builder.start()
    while len(calls) < 2 and builder.is_alive():  # the app prints while the second step runs
        builder.join(0.01)
    print("the app's own line")
    app_printed.set()
    builder.join()
    out, err = capfd.readouterr()
    log = tmp_path / "logs" / "export.log"
    assert out.splitlines()[0] == (f"Building 2 stand-in step(s) in {tmp_path}; library output "
                                   f"in {log}")
    assert [LINE.fullmatch(line).group(3) for line in out.splitlines()[1:] if LINE.match(line)] \
        == ["First step", "Second step"]
    assert "the app's own line" in out and len(out.splitlines()) == 4 and err == ""
    assert calls == [(0, 2, "First step"), (1, 2, "Second step"), (2, 2, None)]
    text = log.read_text()
    for noise in ("a library's print", "a library warning from Second step",
                  "a transformers warning", "a progress bar"):
        assert noise in text
    assert not isinstance(sys.stdout, standins._ThreadStream)  # put back


def test_only_the_stand_ins_served_and_their_fast_decoder_are_built(tmp_path):
    """A Space serving a real SDXL-Turbo still needs the Vega stand-in (and its TAESD), nothing
    more."""
    steps = standins.missing(tmp_path, serving=["tiny-vega"])
    assert [(step.stand_in.id, step.stand_in.variant) for step in steps] == [
        ("tiny-taesd", "fp16"), ("tiny-vega", "fp16"), ("tiny-taesd", "int8")]
    assert len(standins.missing(tmp_path)) == len(standins.STAND_IN_STEPS)
