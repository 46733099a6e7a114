"""python -m benchmarks.public_layouts [--quick] [--repeats 6]: the public Hub layouts against
our own export of the same graph, and a Space-sized start.

1. The full-size SDXL-Turbo stand-in (benchmarks.folders: INT8 UNet, FP16 TAESD-XL) is laid out
   as its public repos are on the Hub (rupeshs/sdxl-turbo-openvino-int8 and
   rupeshs/taesdxl-openvino, file for file: tests/publichub.py, the same builders the tests'
   fake repos come from) and put in a Hugging Face cache of its own (tests/hubfake.py).
2. W1 (text-to-image 512², 1 step) and W2 (image-to-image 512², 2 steps, strength 0.5) run
   through the app's serving path (Registry.get, generate.run_all, TAESD) in one child process
   per side: "ours" from our own export's folders, "hub" from an empty models folder and that
   cache (served through its view, pipelines/hub_view.py). Both load (one after the other),
   then their runs alternate, so that a drift of a shared machine's speed lands on both: a
   warm-up, then --repeats timed runs each, the same prompts and seeds on both. Reported: the
   medians and fastest runs, hub ÷ ours, and whether every image is the same bytes (the
   layout changes the first text encoder's id type, not a number).
3. A Space-sized start: `python app.py` as the Space runs it (SPACE_ID set, so --preload; an
   empty models folder; that cache as preload_from_hub leaves it; --python, default the
   serving-only install named by TURBO_SERVING_PYTHON) in a memory cgroup of --memory-gb and
   on the first --cpus CPUs. Reported: seconds from the process start to the page, and to
   the first image a visitor asks for as soon as the page is up (/text_to_image 512², 1
   step), then a second image; the cgroup's peak and whether it was killed.

Writes benchmarks/results/public_layouts-<machine>.json and .md (--quick: the tiny stand-in,
figures meaningless, code paths real, into public_layouts-<machine>-quick.*)."""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import app_process, folders, machine, report
from benchmarks.memlimit import MemoryLimit, Unavailable

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "sdxl-turbo"  # the catalogue entry whose public repos are laid out (quick: its stand-in)
PROMPT = "a cinematic photo of a red fox in a snowy forest at sunrise, detailed fur"
SEED = 42
SAME_SPEED = 1.05  # hub ÷ ours at most, per workload: the view adds no work per image
START_SECONDS = 1200


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        return _child(json.loads(args.child))
    name = f"{machine.name()}-quick" if args.quick else machine.name()
    built = folders.prepare(args.quick, {"int8", "taesd"})
    cache = _hub_cache(built)
    summary = {"benchmark": "public_layouts", "machine": name, "quick": args.quick,
               **report.provenance(), "repeats": args.repeats, "repos": list(_repos())}
    # The work folder holds both sides' compiled-model caches (about 10 GB at full size): it
    # goes when the run ends, failed or not, so that repeated runs never fill the disk.
    with tempfile.TemporaryDirectory(prefix="turbo-public-layouts-") as folder:
        work = Path(folder)
        summary["sides"] = _compare(built, cache, work, args.repeats)
        summary["space_start"] = _space_start(cache, work, args)
    summary["same_bytes"] = summary["sides"]["ours"]["images"] == summary["sides"]["hub"]["images"]
    summary["ratios"] = _ratios(summary["sides"], "median_s")
    summary["min_ratios"] = _ratios(summary["sides"], "min_s")
    summary["targets"] = _targets(summary)
    base = args.results / f"public_layouts-{name}"
    report.publish(base, summary, markdown(summary))
    return 0


def _ratios(sides: dict, figure: str) -> dict[str, float]:
    """Hub ÷ ours of one figure ("median_s", "min_s"), per workload."""
    return {w: round(sides["hub"][figure][w] / sides["ours"][figure][w], 3)
            for w in sides["ours"][figure]}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.public_layouts",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tiny stand-in, in a minute")
    parser.add_argument("--repeats", type=int, default=6,
                        help="timed runs of each workload per side")
    parser.add_argument("--memory-gb", type=float, default=16.0,
                        help="the Space-sized start's memory cgroup (default 16, a CPU "
                             "upgrade Space's)")
    parser.add_argument("--cpus", type=int, default=2, help="the Space-sized start's CPUs")
    parser.add_argument("--python", default=os.environ.get("TURBO_SERVING_PYTHON")
                        or sys.executable, help="the interpreter of the Space-sized start "
                                                "(default: TURBO_SERVING_PYTHON, else this one)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


# --- the layouts ------------------------------------------------------------------------

def _repos() -> dict[str, str]:
    """repo -> what of the built folders it holds: "int8" (the pipeline) or "taesd"."""
    from pipelines import catalogue

    spec = catalogue.get(MODEL)
    return {spec.hub_exports["int8"]: "int8",
            catalogue.AUTOENCODERS[spec.fast_decoder].hub_export: "taesd"}


def _hub_cache(built: folders.Folders) -> Path:
    """A Hugging Face cache holding the public layouts of the built folders, made once (a
    marker file says it is complete)."""
    from tests import publichub
    from tests.hubfake import put_in_cache

    cache = built.models_dir / ".public-layouts" / "hf-cache"
    if (cache / "complete").is_file():
        return cache
    shutil.rmtree(cache.parent, ignore_errors=True)
    sources = {"int8": built.root / "int8", "taesd": built.models_dir / built.autoencoder_id}
    for repo, what in _repos().items():
        layout = cache.parent / "layouts" / repo
        print(f"[public_layouts] laying out {repo}…", flush=True)
        layout.mkdir(parents=True)
        publichub.BUILDERS[repo](sources[what], layout)
        put_in_cache(cache, repo, layout)
        shutil.rmtree(layout)  # the cache holds its own copy (blobs)
    (cache / "complete").write_text("")
    return cache


# --- W1 and W2, ours against the hub layout ---------------------------------------------

def _side_folder(side: str, built: folders.Folders, work: Path) -> Path:
    """The models folder a side serves from: ours holds our INT8 export and FP16 TAESD (the
    hub side has no INT8 TAESD), as SDXL-Turbo (--quick: the tiny stand-in's folders under
    its id); the hub side's is empty, so it serves from the cache."""
    models = work / f"models-{side}"
    models.mkdir()
    if side == "ours":
        (models / MODEL).mkdir()
        (models / MODEL / "int8").symlink_to(built.root / "int8")
        (models / "taesdxl").symlink_to(built.models_dir / built.autoencoder_id)
    return models


class Side:
    """One side loaded in a child process of its own (cold, its memory its own), running one
    workload take when asked: both sides stay loaded, so their takes can alternate and a
    drift of the machine's speed lands on both alike."""

    def __init__(self, name: str, models: Path, cache: Path, work: Path):
        self.name = name
        print(f"[public_layouts] {name}: loading…", flush=True)
        job = {"models": str(models), "cache": str(cache), "ov_cache": str(work / f"ov-{name}")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.public_layouts", "--child", json.dumps(job)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, HF_HUB_OFFLINE="1"))
        self.loaded = self._answer()  # load seconds, what it serves

    def take(self, workload: str, take: int) -> dict:
        return self._ask({"workload": workload, "take": take})

    def finish(self) -> dict:
        answer = self._ask({"done": True})
        self.process.wait(timeout=60)
        return answer

    def _ask(self, command: dict) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def _answer(self) -> dict:
        for line in self.process.stdout:  # the child's own output goes to stderr
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"{self.name}: the child ended (status {self.process.wait()})")


def _compare(built: folders.Folders, cache: Path, work: Path, repeats: int) -> dict:
    """Both sides loaded one after the other, then each take of each workload on both, the
    side going first alternating; take 0 warms up."""
    sides = {name: Side(name, _side_folder(name, built, work), cache, work)
             for name in ("ours", "hub")}
    try:
        runs = {name: {"W1": [], "W2": []} for name in sides}
        images = {name: {} for name in sides}
        for take in range(repeats + 1):
            for workload in ("W1", "W2"):
                order = list(sides) if take % 2 else list(sides)[::-1]
                for name in order:
                    print(f"[public_layouts] {name}: {workload} take {take}", flush=True)
                    done = sides[name].take(workload, take)
                    images[name][f"{workload} take {take}"] = done["image"]
                    if take:
                        runs[name][workload].append(done["seconds"])
        finished = {name: side.finish() for name, side in sides.items()}
    finally:
        for side in sides.values():
            if side.process.poll() is None:
                side.process.kill()
    return {name: {**sides[name].loaded, **finished[name], "timed_s": runs[name],
                   "median_s": {w: round(statistics.median(t), 3) for w, t in runs[name].items()},
                   "min_s": {w: min(t) for w, t in runs[name].items()},
                   "images": images[name]} for name in sides}


def _child(job: dict) -> int:
    """The child: load, answer one JSON line, then one JSON line per command on stdin."""
    from benchmarks.runners import source_image
    from pipelines import catalogue, generate
    from pipelines.registry import Registry
    from pipelines.requests import Image2Image, Text2Image, validate

    sys.stdout, answers = sys.stderr, sys.stdout  # library output must not mix with answers

    def answer(data: dict) -> None:
        answers.write(json.dumps(data) + "\n")
        answers.flush()

    registry = Registry(Path(job["models"]), hub_cache=Path(job["cache"]),
                        cache_dir=Path(job["ov_cache"]))
    start = time.perf_counter()
    loaded = registry.get(MODEL, "int8")
    answer({"load_s": round(time.perf_counter() - start, 2), "served_from": str(loaded.folder)})
    source = source_image(512)  # benchmarks.runners', the same on both sides
    common = dict(model_id=MODEL, variant="int8", seed=SEED, width=512, height=512,
                  fast_decoder=True)
    make = {"W1": lambda p: Text2Image(prompt=p, steps=1, **common),
            "W2": lambda p: Image2Image(prompt=p, steps=2, strength=0.5, image=source, **common)}
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("done"):
            answer({"decoder": str(registry.autoencoder_for(catalogue.get(MODEL), "int8")),
                    "label": registry.label(MODEL, "int8"),
                    "peak_rss_gb": app_process.peak_rss_gb(os.getpid())})
            return 0
        request = validate(make[command["workload"]](f"{PROMPT}, take {command['take']}"),
                           registry.catalogue)
        began = time.perf_counter()
        result, = generate.run_all(loaded, request)
        answer({"seconds": round(time.perf_counter() - began, 3),
                "image": hashlib.sha256(result.image.tobytes()).hexdigest()})
    return 0


# --- a Space-sized start ----------------------------------------------------------------

def _space_start(cache: Path, work: Path, args) -> dict:
    """app.py as the Space starts it, timed from outside: the page, then a visitor's first
    image and a second one. A memory cgroup this machine cannot give is recorded, and the
    start runs without it."""
    from gradio_client import Client

    models, log = work / "space-models", work / "space.log"
    models.mkdir()
    port = app_process.free_port()
    environ = {"SPACE_ID": "bench/turbo-studio", "HF_HUB_CACHE": str(cache),
               "TURBO_MODELS_DIR": str(models), "TURBO_PORT": str(port)}
    cpus = set(sorted(os.sched_getaffinity(0))[:args.cpus])
    result = {"python": args.python, "cpus": len(cpus), "memory_gb": args.memory_gb}
    try:
        limit = MemoryLimit(int(args.memory_gb * 2**30)).__enter__()
    except Unavailable as e:
        limit, result["memory_limit"] = None, f"not set: {e}"

    def enter() -> None:  # in the child, before app.py runs
        os.sched_setaffinity(0, cpus)
        if limit is not None:
            limit.enter()

    print(f"[public_layouts] Space-sized start ({len(cpus)} CPUs, {args.memory_gb:g} GB)…",
          flush=True)
    url = f"http://127.0.0.1:{port}/"
    began = time.perf_counter()
    process = app_process.start(log, python=args.python, environ=environ, preexec=enter)
    try:
        app_process.wait_until_up(process, url, log, START_SECONDS)
        result["page_s"] = round(time.perf_counter() - began, 2)
        client = Client(url, verbose=False)
        for key in ("first_image_s", "second_image_s"):
            asked = time.perf_counter()
            client.predict(PROMPT, SEED, False, 1, 512, 512, "int8", api_name="/text_to_image")
            result[key] = round(time.perf_counter() - (began if key == "first_image_s"
                                                       else asked), 2)
    except Exception:  # the log goes with the work folder: show it first
        print(log.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        app_process.stop(process)
        if limit is not None:
            result["peak_gb"] = round(limit.peak() / 2**30, 2)
            result["oom_killed"] = limit.oom_killed()
            limit.__exit__()
    result["log_tail"] = log.read_text()[-2000:]
    return result


# --- the report -------------------------------------------------------------------------

def _targets(summary: dict) -> dict:
    targets = {f"{w}: hub layout ÷ our export, medians": report.check(ratio, SAME_SPEED)
               for w, ratio in summary["ratios"].items()}
    targets.update({f"{w}: hub layout ÷ our export, fastest runs": report.check(ratio, SAME_SPEED)
                    for w, ratio in summary["min_ratios"].items()})
    targets["the same image bytes"] = "yes" if summary["same_bytes"] else "NO"
    return targets


def markdown(summary: dict) -> str:
    ours, hub = summary["sides"]["ours"], summary["sides"]["hub"]
    start = summary["space_start"]
    lines = [f"# Public Hub layouts vs our own export, {summary['machine']}"
             f"{' (quick: tiny stand-in, figures meaningless)' if summary['quick'] else ''}",
             "", f"{summary['date']}, commit {summary['commit']}, {summary['cpu']['name']} "
             f"({summary['cpu_count']} CPUs, {summary['cpu']['default_precision']}); "
             f"repos {', '.join(summary['repos'])}; both sides loaded at once, their runs "
             f"alternating: median (min) of {summary['repeats']} runs after a warm-up. The hub "
             "side's load includes making its view (tokenizers converted).", "",
             "| | load s | W1 s | W2 s | peak RSS GB | UNet (read from its graph) |",
             "|---|---|---|---|---|---|"]
    for name, side in (("our export", ours), ("hub layout (view)", hub)):
        lines.append(f"| {name} | {side['load_s']} | {side['median_s']['W1']} "
                     f"({side['min_s']['W1']}) | {side['median_s']['W2']} "
                     f"({side['min_s']['W2']}) | {side['peak_rss_gb']} | {side['label']} |")
    lines += report.targets_table(summary["targets"])
    lines += ["", f"## Space-sized start ({start['cpus']} CPUs, {start['memory_gb']:g} GB "
                  "memory cgroup, --preload, empty models folder)", "",
              "| process start → page s | → first image s | second image s | cgroup peak GB "
              "| killed |", "|---|---|---|---|---|",
              f"| {start.get('page_s', '–')} | {start.get('first_image_s', '–')} | "
              f"{start.get('second_image_s', '–')} | {start.get('peak_gb', '–')} | "
              f"{start.get('oom_killed', start.get('memory_limit', '–'))} |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
