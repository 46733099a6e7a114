"""The app in a process of its own, as a user starts it (`python app.py ...`): for benchmarks
that measure it from outside, through its HTTP API, and for the tests that do the same."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(log: Path, *flags: str, python: str = sys.executable,
          environ: dict[str, str] | None = None, preexec=None) -> subprocess.Popen:
    """`python app.py *flags`, offline, its output in `log` (a pipe nobody reads would fill up
    and stall it), in a session of its own so that stop() reaches its children too. python:
    the interpreter (another venv's, e.g. the serving install); environ: variables to add;
    preexec: called in the child before it runs (a cgroup, a CPU set)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", **(environ or {}))
    with log.open("w") as output:
        return subprocess.Popen([python, "app.py", *flags], cwd=ROOT, env=env,
                                stdout=output, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True, preexec_fn=preexec)


def wait_until_up(process: subprocess.Popen, url: str, log: Path, seconds: float) -> None:
    """Until the page answers; an app that ended or did not answer in time raises, with its
    log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app ended with status {process.returncode}:\n"
                               + log.read_text()[-3000:])
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the app did not answer at {url} in {seconds:.0f} s:\n"
                       + log.read_text()[-3000:])


def stop(process: subprocess.Popen, seconds: float = 60) -> None:
    """As docker stop or systemd end it (SIGTERM: the app closes gradio and any Ray cluster it
    started); whatever is left after `seconds` is killed."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def serving(log: Path, *flags: str, seconds: float) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python app.py *flags` on a free loopback port, up (waited for at most `seconds`):
    (the process, its URL), stopped on leaving."""
    port = free_port()
    process = start(log, *flags, "--port", str(port))
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(process, url, log, seconds)
        yield process, url
    finally:
        stop(process)


def status(pid: int) -> dict[str, str]:
    """The process's /proc status fields (VmRSS, VmHWM, Threads, ...), as text."""
    return dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                .splitlines())


def peak_rss_gb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in GB."""
    return round(int(status(pid)["VmHWM"].split()[0]) * 1024 / 2**30, 3)
