"""python -m benchmarks.soak [--minutes 30] [--clients 8]: the app under mixed traffic for a long
time, on the tiny stand-ins: does it answer everything, and does it hold its memory and threads?

Starts the app as a user does (`python app.py`), sends each kind of request once (every model
and part the traffic needs is loaded then, not during the measurement), then --clients page
sessions send for --minutes, one request after another, each going round the kinds from its
own place: text-to-image, a model switch (the INT8 variant, and SDXL base), image-to-image,
inpainting, real-time mode, Live sketch frames, and a streaming batch (every other one
stopped at its first preview). The server's RSS and thread count are read every 10 s.

Reports requests answered, errors by message, p50 / p95 latency per kind, and RSS and threads
at the start, after the first minute, after five and at the end. Targets: no request unanswered
(an error with a message is an answer, a bare failure or a hang is not), RSS at the end within
+10 % of its level after the first minute, threads flat (within the same +10 %) from five
minutes on.

Why threads from five minutes: OpenVINO starts threads for every compiled model and keeps
them, once the model is freed, for the next one. Each model's kept prompts (frozen_prompt.Kept,
a few per model) hold compiled encoders, so the threads rise while those fill, in the first
minutes of mixed traffic, to a level set by how many compiled models were ever alive at once;
they grow after that only where something compiled is never freed, which is what this looks
for. Writes benchmarks/results/soak-<machine>.json and .md."""

import argparse
import itertools
import json
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw

from benchmarks import app_process, machine, report
from benchmarks.page import App, Page, answered
from benchmarks.scale import RESULTS, percentile
from benchmarks.throughput import build_what_the_app_builds_at_start

START_SECONDS = 600
GROWTH = 1.10  # RSS and threads at the end ÷ their level at the start of the steady state
RSS_FROM, THREADS_FROM = 60, 300  # seconds into the soak where the steady state starts
SAMPLE_SECONDS = 10
SIZE = 256


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    models_dir = args.models_dir or _stand_ins()
    build_what_the_app_builds_at_start(models_dir)
    name = machine.name()
    with tempfile.TemporaryDirectory(prefix="turbo-soak-") as work:
        log = Path(work) / "app.log"
        try:
            with app_process.serving(log, "--models-dir", str(models_dir),
                                     seconds=START_SECONDS) as (process, url):
                summary = _soak(App(url), process.pid, args)
        except Exception:  # the log goes with the work folder: show it first
            print(log.read_text()[-3000:])
            raise
    summary.update({"benchmark": "soak", "machine": name, **report.provenance(),
                    "minutes": args.minutes, "clients": args.clients})
    summary["targets"] = targets(summary)
    base = args.results / f"soak-{name}"
    report.publish(base, summary, markdown(summary))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--models-dir", type=Path,
                        help="default: the tiny stand-ins, built where missing")
    parser.add_argument("--results", type=Path, default=RESULTS)
    return parser


def _stand_ins() -> Path:
    from benchmarks import folders

    return folders.prepare(True, {"fp16"}).models_dir


# --- the traffic ------------------------------------------------------------------------

def _picture(i: int, colour: str = "red") -> Image.Image:
    picture = Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(picture).ellipse((40 + i % 10 * 10, 40, 200, 200), fill=colour)
    return picture


def _mask() -> Image.Image:
    layer = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle((64, 64, 192, 192), fill=(255, 255, 255, 255))
    return layer


def _text_to_image(page: Page, i: int, **given) -> str:
    request = dict(prompt=f"a lighthouse, take {i}", seed=i, randomize=False, steps=1,
                   width=SIZE, height=SIZE, variant="fp16", fast=True, model="tiny",
                   guidance=0.0)
    request.update(given)
    return answered(page.call("text_to_image", *request.values()))


def _switch(page: Page, i: int) -> str:
    """Another variant or another model than the last request's: the registry loads it (or
    finds it loaded, within its RAM budget)."""
    if i % 2:
        return _text_to_image(page, i, variant="int8")
    return _text_to_image(page, i, steps=20, width=512, height=512, model="tiny-base",
                          guidance=2.0)


def _image_to_image(page: Page, i: int) -> str:
    return answered(page.call("image_to_image", page.upload(_picture(i)), f"a planet {i}", 0.5,
                              2, i, False))


def _inpaint(page: Page, i: int) -> str:
    editor = {"background": page.upload(_picture(i)), "layers": [page.upload(_mask())],
              "composite": None}
    return answered(page.call("inpaint", editor, f"a full moon {i}", 1.0, 2, i, False))


def _realtime(page: Page, i: int) -> str:
    return answered(page.call("realtime", True, f"a lighthouse, take {i}", i, 1, SIZE, SIZE,
                              "fp16", True, "tiny", 0.0, None))


def _live(page: Page, i: int) -> str:
    sketch = {"background": None, "layers": [], "composite": page.upload(_picture(i, "blue"))}
    return answered(page.call("sketch_frame", sketch, "a blue apple", 0.5, 2, SIZE, i, "fp16",
                              "tiny"))


def _batch(page: Page, i: int) -> str:
    """A streaming batch of 2 at 4 steps on the Vega stand-in (512², its smallest); every
    other one stopped at its first preview (answered: "stopped")."""
    pressed = [] if i % 2 == 0 else [True]  # pressed once, at the first preview

    def on_message(message):
        if not pressed and message["msg"] == "process_generating":
            pressed.append(page.stop("vega_stop"))

    final = page.call("vega_text_to_image", f"a castle at dusk {i}", None, 4, 1.0, 512, 512,
                      i, False, "fp16", True, 2, on_message=on_message)
    if final["success"] and "Stopped" in json.dumps(final["output"]["data"]):
        return "stopped"
    return answered(final)


KINDS = {"text-to-image": _text_to_image, "model switch": _switch,
         "image-to-image": _image_to_image, "inpaint": _inpaint, "real-time": _realtime,
         "live frame": _live, "batch": _batch}


# --- the run ----------------------------------------------------------------------------

def _soak(app: App, pid: int, args) -> dict:
    print("[soak] each kind once (loads what the traffic needs)…", flush=True)
    warm_up = {kind: send(app.page(), 0) for kind, send in KINDS.items()}
    samples, done = [], threading.Event()
    sampler = threading.Thread(target=_sample, args=(pid, samples, done), daemon=True)
    sampler.start()
    until = time.monotonic() + args.minutes * 60
    print(f"[soak] {args.clients} clients for {args.minutes:g} min…", flush=True)
    with ThreadPoolExecutor(args.clients) as pool:
        runs = list(pool.map(lambda c: _client(app.page(), c, until), range(args.clients)))
    done.set()
    sampler.join()
    requests = [r for run in runs for r in run]
    return {"warm_up": warm_up, **_tally(requests), "server": _server(samples)}


def _client(page: Page, client: int, until: float) -> list[dict]:
    """One session, one request after another until `until`, going round the kinds from its
    own place; a request that raises (a hang past the page's timeout, a broken stream) is
    recorded as unanswered and the session goes on."""
    kinds = list(KINDS)
    done = []
    for i in itertools.count(client):
        if time.monotonic() >= until:
            return done
        kind = kinds[i % len(kinds)]
        began = time.perf_counter()
        try:
            outcome = KINDS[kind](page, i)
        except Exception as e:  # noqa: BLE001 - counted and reported, not hidden
            outcome = None
            error = f"{type(e).__name__}: {e}"[:200]
        else:
            error = None
        done.append({"kind": kind, "seconds": time.perf_counter() - began, "outcome": outcome,
                     "exception": error})
    return done


def _sample(pid: int, samples: list, done: threading.Event) -> None:
    began = time.monotonic()
    while True:
        status = app_process.status(pid)
        samples.append({"s": round(time.monotonic() - began, 1),
                        "rss_gb": round(int(status["VmRSS"].split()[0]) / 2**20, 3),
                        "threads": int(status["Threads"])})
        if done.wait(SAMPLE_SECONDS):
            return


def _tally(requests: list[dict]) -> dict:
    by_kind = defaultdict(list)
    for request in requests:
        by_kind[request["kind"]].append(request)
    kinds = {kind: {"requests": len(rs),
                    "images": sum(r["outcome"] == "image" for r in rs),
                    "stopped": sum(r["outcome"] == "stopped" for r in rs),
                    "p50_s": round(percentile([r["seconds"] for r in rs], 0.5), 3),
                    "p95_s": round(percentile([r["seconds"] for r in rs], 0.95), 3)}
             for kind, rs in by_kind.items()}
    errors = Counter(r["outcome"] for r in requests if r["outcome"] not in ("image", "stopped",
                                                                            None, ""))
    unanswered = [r for r in requests if r["outcome"] in (None, "")]
    return {"requests": len(requests), "kinds": kinds, "errors": dict(errors.most_common()),
            "unanswered": len(unanswered),
            "unanswered_examples": [r["exception"] or f"{r['kind']}: a bare error"
                                    for r in unanswered[:10]]}


def _server(samples: list[dict]) -> dict:
    """RSS and threads at the start, after the first minute, after five and at the end (each
    the median of the three samples there, so one sample in a run's peak does not decide),
    and the most threads seen."""
    def level(window: list[dict]) -> dict:
        return {key: statistics.median(s[key] for s in window) for key in ("rss_gb", "threads")}

    def after(seconds: int) -> dict:
        first = next((i for i, s in enumerate(samples) if s["s"] >= seconds), len(samples) - 1)
        return level(samples[first:first + 3])

    return {"start": level(samples[:3]), "after_first_minute": after(RSS_FROM),
            "after_five_minutes": after(THREADS_FROM), "end": level(samples[-3:]),
            "most_threads": max(s["threads"] for s in samples), "samples": samples}


def targets(summary: dict) -> dict:
    server = summary["server"]
    end = server["end"]
    return {"unanswered requests": report.check(summary["unanswered"], 0, ""),
            "RSS at the end ÷ after the first minute": report.check(
                end["rss_gb"] / server["after_first_minute"]["rss_gb"], GROWTH),
            "threads at the end ÷ after five minutes": report.check(
                end["threads"] / server["after_five_minutes"]["threads"], GROWTH)}


def markdown(summary: dict) -> str:
    server = summary["server"]
    lines = [f"### {summary['machine']}: soak, {summary['clients']} clients for "
             f"{summary['minutes']:g} min on the tiny stand-ins",
             "", f"{summary['date']}, {summary['cpu'].get('name', '?')}, "
                 f"{summary['cpu_count']} CPUs. One app process (`python app.py`); each client a "
                 f"page session sending one request after another, round the kinds. "
                 f"{summary['requests']} requests, {summary['unanswered']} unanswered.", "",
             "| kind | requests | images | stopped | p50 s | p95 s |", "|---|---|---|---|---|---|"]
    for kind, k in summary["kinds"].items():
        lines.append(f"| {kind} | {k['requests']} | {k['images']} | {k['stopped']} | "
                     f"{k['p50_s']} | {k['p95_s']} |")
    lines += ["", "| errors (answered with this message) | count |", "|---|---|"]
    lines += [f"| {message[:120]} | {count} |" for message, count in summary["errors"].items()]
    lines += ["", "| server | RSS GB | threads |", "|---|---|---|"]
    for when in ("start", "after_first_minute", "after_five_minutes", "end"):
        level = server[when]
        lines.append(f"| {when.replace('_', ' ')} | {level['rss_gb']} | {level['threads']} |")
    lines.append(f"| most | | {server['most_threads']} |")
    lines += report.targets_table(summary["targets"])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
