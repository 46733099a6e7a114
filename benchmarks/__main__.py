"""python -m benchmarks [--quick]: turbo-studio against its peers, side by side, in one run.

Every configuration (benchmarks.runners.CONFIGS: optimum-intel out of the box, the OpenVINO
notebook's INT8 + TAESD, the FastSD CPU way, openvino.genai, diffusers on PyTorch, and
turbo-studio's own serving path in each of its configurations) runs in its own child process,
one after another, on the same exported folders (benchmarks.folders): load, one warm-up per
workload, then --repeats timed runs, on a worker thread as the app runs them. --rounds 2 runs
the whole sequence twice, alternating the configurations. Each turbo-studio configuration
first starts with an empty compiled-model cache, and at the end starts once more from the
cache.

Reports the median end-to-end and per-stage latencies, peak RSS and anonymous memory, the
RSS after the first image, cold start (load, and load +
first image), the ratio to optimum-intel out of the box (a0), and the compute floor per stage
(FLOPs ÷ this machine's bf16 / INT8 peak, benchmarks.floor) with the distance from it. Writes
benchmarks/results/<machine>.json, .md and .png. --quick runs the same code on the tiny
stand-in in about a minute (figures meaningless, code paths real); it never overwrites a full
run's files."""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import floor, folders as folders_module, machine, report
from benchmarks.int8_unet import RESULTS, memory_now, run_measured
from benchmarks.runners import CONFIGS, WORKLOADS, cache_dir, load
from pipelines.threads import on_a_worker_thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tiny stand-in, in seconds")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma-separated keys, default all: %(default)s")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the whole sequence this many times (2: cached cold start)")
    parser.add_argument("--first-start-every-round", action="store_true",
                        help="empty turbo-studio's compiled-model cache before every round, "
                             "not only the first: every round's cold start is a first start")
    parser.add_argument("--floor-gb", type=float, default=0.75,
                        help="stop a configuration when the machine has less memory available")
    parser.add_argument("--memory-limit-gb", type=float,
                        help="run each configuration in a memory cgroup of this size (Linux): "
                             "what fits in N GB, shown by running in N GB")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder to write to")
    args = parser.parse_args(argv)
    configs = [CONFIGS[key] for key in args.configs.split(",")]
    workloads = args.workloads.split(",")

    folders = folders_module.prepare(args.quick, set().union(*(c.needs for c in configs)))
    name = _machine(args.quick)
    print(f"[bench] {name}: measuring the bf16 and INT8 peaks…", flush=True)
    peaks, kernels = {}, {}
    for precision in ("bf16", "int8"):
        peaks[precision], kernels[precision] = floor.peak(precision)
    runs = {config.key: [] for config in configs}
    for round_ in range(args.rounds):
        for config in configs:
            print(f"[bench] round {round_ + 1}: {config.key} — {config.label}", flush=True)
            first_start = round_ == 0 or args.first_start_every_round
            if first_start and config.runtime == "turbo":  # a true first start: no compile cache
                shutil.rmtree(cache_dir(config, folders), ignore_errors=True)
            runs[config.key].append(_run_config(config, folders, workloads, args.repeats, args))
    for config in configs:  # then each of ours starts once more, now from the compile cache
        if config.runtime == "turbo" and "workloads" in runs[config.key][0]:
            print(f"[bench] cached start: {config.key}", flush=True)
            cached = _run_config(config, folders, ["W1"], 0, args)
            if cached.get("from_cache"):  # a start that compiled anything is not a cached one
                runs[config.key][0]["cached_cold_start_seconds"] = (
                    cached["load_seconds"] + cached["first_call_seconds"])
    results = _summarise(configs, workloads, runs, peaks, kernels, folders, args)
    base = args.results / name
    report.write(base, results, report.markdown(results))
    report.chart(results, base.with_suffix(".png"))
    print(report.markdown(results))
    print(f"wrote {base}.json, .md and .png")
    return 0


def _machine(quick: bool) -> str:
    return f"{machine.name()}-quick" if quick else machine.name()


def _run_config(config, folders, workloads, repeats, args) -> dict:
    """One configuration in a child process: its timings, or why it was skipped."""
    missing = _missing(config, folders)
    if missing:
        return {"skipped": missing}
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, "-m", "benchmarks", "_config", config.key,
                   "--workloads", ",".join(workloads), "--repeats", str(repeats),
                   "--out", out.name] + (["--quick"] if args.quick else [])
        limit = int(args.memory_limit_gb * 2**30) if args.memory_limit_gb else None
        memory = run_measured(command, int(args.floor_gb * 2**30), limit)
        text = Path(out.name).read_text()
    measured = {key: memory[key] for key in ("peak_rss_gb", "peak_anon_gb",
                                             "memory_limit_peak_gb", "page_cache_emptied")
                if key in memory}
    if memory["returncode"] != 0:
        why = ("killed by the memory limit" if memory.get("killed_by_memory_limit")
               else "out of memory" if memory["stopped_out_of_memory"]
               else f"exit {memory['returncode']}")
        return {"failed": why, **measured}
    return {**json.loads(text), **measured}


def _missing(config, folders) -> str | None:
    if not folders.has(config.variant):
        base = config.variant.partition("+")[0]
        return f"no {base} folder in {folders.root} (python -m benchmarks.standins builds it)"
    if config.runtime == "genai":
        try:
            import openvino_genai  # noqa: F401
        except ImportError:
            return "openvino-genai is not installed (pip install -r requirements.txt)"
    return None


def _child(argv: list[str]) -> int:
    """The child process: load one configuration, warm up and time each workload."""
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--workloads")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    # Off the main thread, as the app and the CLI generate (see pipelines.threads), for every
    # configuration alike: the peers' as much as turbo-studio's.
    result = on_a_worker_thread(lambda: _measure(args))
    args.out.write_text(json.dumps(result))
    return 0


def _measure(args) -> dict:
    """Load the configuration, then warm up and time each workload."""
    folders = folders_module.existing(args.quick)
    start = time.perf_counter()
    runner = load(CONFIGS[args.config], folders)
    result = {"load_seconds": time.perf_counter() - start, "workloads": {},
              "from_cache": getattr(runner, "from_cache", None)}
    config = CONFIGS[args.config]
    for key in args.workloads.split(","):
        if not WORKLOADS[key].runs_on(config):
            continue  # not this configuration's kind of work: the report shows "–"
        warm_up = runner(WORKLOADS[key])
        if "first_call_seconds" not in result:  # the first image ever
            result["first_call_seconds"] = warm_up["total"]
            result["after_first_image"] = memory_now()
            if hasattr(runner, "wait_saved"):  # turbo-studio saves its compiled parts now,
                saving = time.perf_counter()   # in the background: not during the timings
                runner.wait_saved()
                result["save_seconds"] = time.perf_counter() - saving
        result["workloads"][key] = [runner(WORKLOADS[key]) for _ in range(args.repeats)]
        print(f"[bench]   {key}: {[round(r['total'], 3) for r in result['workloads'][key]]}",
              flush=True)
    if hasattr(runner, "load_per_part"):  # turbo-studio's: compile (or cache load) per part
        result["load_per_part"] = {k: round(s, 2) for k, s in runner.load_per_part.items()}
    return result


def _summarise(configs, workloads, runs, peaks, kernels, folders, args) -> dict:
    flops = None if args.quick else floor.stage_tflops()
    summary = {
        "benchmark": "benchmarks", "machine": _machine(args.quick), "quick": args.quick,
        "cpu_count": os.cpu_count(),
        "cpu": machine.cpu(), "model": folders.model_id, "repeats": args.repeats,
        "rounds": args.rounds,
        "peaks_tflops": {p: round(v / 1e12, 3) for p, v in peaks.items()},
        "peak_kernels": kernels,
        "stage_tflops": flops,
        "workloads": {key: WORKLOADS[key].label for key in workloads},
        "memory_limit_gb": args.memory_limit_gb,
        "first_start_every_round": args.first_start_every_round,
        "configs": {},
    }
    for config in configs:
        done = [run for run in runs[config.key] if "workloads" in run]
        entry = {"label": config.label}
        if not done:
            entry.update({k: v for k, v in runs[config.key][0].items()
                          if k in ("skipped", "failed", "peak_rss_gb", "memory_limit_peak_gb")})
            summary["configs"][config.key] = entry
            continue
        entry["cold_start_seconds"] = [round(run["load_seconds"] + run["first_call_seconds"], 2)
                                       for run in done]
        entry["load_seconds"] = [round(run["load_seconds"], 2) for run in done]
        if "load_per_part" in done[0]:  # the first start's, from an empty cache
            entry["load_per_part_seconds"] = done[0]["load_per_part"]
        if "save_seconds" in done[0]:  # saving the compiled parts, after the first image
            entry["save_seconds"] = [round(run["save_seconds"], 2) for run in done]
        if "cached_cold_start_seconds" in done[0]:
            entry["cached_cold_start_seconds"] = round(done[0]["cached_cold_start_seconds"], 2)
        entry["peak_rss_gb"] = max(run["peak_rss_gb"] for run in done)
        entry["peak_anon_gb"] = max(run["peak_anon_gb"] for run in done)
        if args.memory_limit_gb:  # what the cgroup was charged at most (RSS and page cache)
            entry["memory_limit_peak_gb"] = max(run["memory_limit_peak_gb"] for run in done)
            entry["page_cache_emptied"] = all(run["page_cache_emptied"] for run in done)
        entry["after_first_image"] = {  # the steady state, beside the peak
            key: max(run["after_first_image"][key] for run in done)
            for key in ("rss_gb", "anon_gb")}
        ran = [key for key in workloads if all(key in run["workloads"] for run in done)]
        entry["median_seconds"] = {key: _medians([r for run in done for r in run["workloads"][key]])
                                   for key in ran}
        entry["fps"] = {key: round(1 / entry["median_seconds"][key]["total"], 2)
                        for key in ran if WORKLOADS[key].unit == "fps"}
        if flops:  # the FLOPs are counted at 512², with the prompt encoded
            entry["floor_seconds"] = {
                key: {stage: round(s, 3)
                      for stage, s in _floor(config, WORKLOADS[key], flops, peaks).items()}
                for key in ran
                if WORKLOADS[key].size == 512}
        summary["configs"][config.key] = entry
    report.add_ratios(summary)
    return summary


def _medians(runs: list[dict]) -> dict:
    stages = sorted({stage for run in runs for stage in run}, key=report.STAGE_ORDER.index)
    return {stage: round(statistics.median(run.get(stage, 0.0) for run in runs), 3)
            for stage in stages}


def _floor(config, workload, flops, peaks) -> dict[str, float]:
    img2img = bool(workload.strength)
    calls = int(workload.steps * workload.strength) if img2img else workload.steps
    return floor.floor_seconds(flops, peaks, calls, img2img, config.fast_decoder,
                               config.int8_stages)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_config"]:
        sys.exit(_child(sys.argv[2:]))
    sys.exit(main())
