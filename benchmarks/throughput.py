"""python -m benchmarks.throughput [--quick] [--clients 8] [--seconds 120]: W6, many users at
once through the app's queue.

Starts the app as a user does (`python app.py`, one process, one run at a time) on the
benchmark's stand-ins, warms it up with one request (the model's load is not timed), then
measures two phases, each sending W1 (text-to-image 512², 1 step) through the app's HTTP API
with gradio_client, every request with its own prompt and seed (distinct users):
  - one client, one request after another, for --seconds: the single-client rate;
  - --clients clients at once, each one request after another, for --seconds; requests still
    queued at the end finish and count.
Each phase reports images per minute over its wall time and p50 / p95 latency as a client sees
it (queueing included). The run lock costs nothing when the many-client rate is the
single-client rate (target ≥ 0.95×: one image at a time either way). Also the app's peak RSS.
Writes benchmarks/results/throughput-<machine>.json and .md (--quick: the tiny stand-in,
figures meaningless, code paths real, into throughput-<machine>-quick.*)."""

import argparse
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks import app_process, machine, report
from benchmarks.report import check, targets_table
from benchmarks.scale import PROMPT, W1, add_model_flags, model_choice, rate_summary

START_SECONDS = 600  # the app's start, before any model is loaded: seconds here
LOCK_TARGET = 0.95


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    models_dir, model, variant = model_choice(args)
    name = f"{machine.name()}-quick" if args.quick else machine.name()
    summary = {"benchmark": "throughput", "workload": f"W6: {W1}, many clients",
               "machine": name, "quick": args.quick, "cpu": machine.cpu(),
               "cpu_count": os.cpu_count(), "model": model, "variant": variant,
               "clients": args.clients, "seconds": args.seconds, "models_dir": str(models_dir)}
    build_what_the_app_builds_at_start(models_dir)
    log = Path(tempfile.mkdtemp(prefix="turbo-throughput-")) / "app.log"  # not a result
    with app_process.serving(log, "--models-dir", str(models_dir),
                             seconds=START_SECONDS) as (process, url):
        summary.update(_measure(url, model, variant, args))
        summary["app_peak_rss_gb"] = app_process.peak_rss_gb(process.pid)
    summary["targets"] = targets(summary)
    base = args.results / f"throughput-{name}"
    report.publish(base, summary, markdown(summary))
    print(f"the app's log: {log}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tiny stand-in")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=120, help="length of each phase")
    add_model_flags(parser)
    return parser


def build_what_the_app_builds_at_start(models_dir: Path) -> None:
    """The offline stand-ins the app would build in the background at its start (the Vega and
    tiny TAESD ones beside the benchmark's models, say): built now, so that no build shares the
    CPU with the measured requests (one did on the Zen 4: the first five single-client images
    took 8-18 s instead of 3.5 s)."""
    from pipelines.settings import Settings
    from ui.demo import first_start_build

    build = first_start_build(Settings(models_dir=models_dir))
    if build is None:
        return
    print("[throughput] building the stand-ins the app builds at its start…", flush=True)
    build.start().finished.wait()
    if build.error is not None:
        raise build.error


def _measure(url: str, model: str, variant: str, args) -> dict:
    from gradio_client import Client

    counter = iter(range(10**9))
    lock = threading.Lock()

    def send(client) -> float:
        with lock:  # a new prompt and seed for every request, across clients
            i = next(counter)
        start = time.perf_counter()
        client.predict(f"{PROMPT}, take {i}", i, False, 1, 512, 512, variant, None, model,
                       api_name="/text_to_image")
        return time.perf_counter() - start

    first = Client(url, verbose=False)
    print("[throughput] warming up (loads the model)…", flush=True)
    warm_up = send(first)
    print(f"[throughput] one client for {args.seconds:g} s…", flush=True)
    single = _phase([first], send, args.seconds)
    clients = [first] + [Client(url, verbose=False) for _ in range(args.clients - 1)]
    print(f"[throughput] {args.clients} clients for {args.seconds:g} s…", flush=True)
    many = _phase(clients, send, args.seconds)
    return {"warm_up_seconds": round(warm_up, 3), "single_client": single,
            "many_clients": many}


def _phase(clients: list, send, seconds: float) -> dict:
    """Each client sends one request after another until `seconds` have passed; the wall time
    runs until the last request has come back. A failed request is counted and ends that
    client's part (a broken app would otherwise be asked again and again)."""
    deadline = time.monotonic() + seconds
    latencies, failures = [], []

    def user(client):
        while time.monotonic() < deadline:
            try:
                latencies.append(send(client))
            except Exception as e:  # noqa: BLE001 - counted and reported, not hidden
                failures.append(f"{type(e).__name__}: {e}"[:300])
                return

    start = time.perf_counter()
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(user, clients))
    wall = time.perf_counter() - start
    if not latencies:
        raise RuntimeError(f"no request succeeded: {failures[:3]}")
    return {"clients": len(clients), **rate_summary(latencies, wall), "failures": failures}


def targets(summary: dict) -> dict:
    """The many-client rate against the single-client one (the run lock must cost nothing),
    and no failed request."""
    single, many = summary["single_client"], summary["many_clients"]
    ratio = many["throughput_per_minute"] / single["throughput_per_minute"]
    return {f"{summary['clients']} clients' images/min ≥ {LOCK_TARGET}× one client's":
            check(ratio, LOCK_TARGET, "×", at_most=False),
            "failed requests": check(len(single["failures"]) + len(many["failures"]), 0, "")}


def markdown(summary: dict) -> str:
    lines = [f"### {summary['machine']}: W6, {summary['clients']} clients through the app's "
             f"queue, {summary['model']} {summary['variant']}, {W1}",
             "",
             f"CPU: {summary['cpu'].get('name', '?')}, {summary['cpu_count']} cores. One app "
             f"process (`python app.py`, one run at a time), {summary['seconds']:g} s a phase, "
             f"every request its own prompt and seed; the app's peak RSS "
             f"{summary['app_peak_rss_gb']:.2f} GB.",
             "",
             "| clients | images | images/min | p50 s | p95 s | failed |",
             "|---|---|---|---|---|---|"]
    for phase in (summary["single_client"], summary["many_clients"]):
        lines.append(f"| {phase['clients']} | {phase['requests']} | "
                     f"{phase['throughput_per_minute']:.2f} | {phase['p50_seconds']:.2f} | "
                     f"{phase['p95_seconds']:.2f} | {len(phase['failures'])} |")
    lines += targets_table(summary["targets"])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
