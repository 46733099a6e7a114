"""python -m benchmarks.int8_unet: INT8 export of the full-size SDXL-Turbo stand-in, and what it
buys.

1. Runs the real export CLI (`python -m export sdxl-turbo --variant int8`) on the full-size
   stand-in in a child process, sampling its memory: peak RSS, peak anonymous memory and wall
   time. A watchdog stops it when the machine is nearly out of memory, so an export that does
   not fit is reported as such instead of being OOM-killed.
2. Times one UNet call at 512² (batch 1, as SDXL-Turbo runs with guidance 0), FP16 and then INT8,
   each compiled alone in its own child process: median of --repeats after a warm-up.

Calibration uses --samples (default 2): statistics change the INT8 ranges, not the graph's cost,
so latency after a lean calibration equals latency after 200 samples; image quality is not
measured here. Results go to benchmarks/results/int8_unet-<host>-<options>.json."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from benchmarks import machine
from benchmarks import report as results
from benchmarks.memlimit import MemoryLimit

RESULTS = Path(__file__).resolve().parent / "results"
UNET_INPUTS = {  # 512² image → 64² latent; the two CLIP encoders' hidden sizes and pooled output
    "sample": (1, 4, 64, 64), "timestep": (1,), "encoder_hidden_states": (1, 77, 2048),
    "text_embeds": (1, 1280), "time_ids": (1, 6),
}


def run_measured(command: list[str], min_available_bytes: int,
                 memory_limit: int | None = None) -> dict:
    """Run a child process, sampling its memory every 0.2 s, and stop it before the machine runs
    out (available memory under the floor): a measurement, not an OOM kill of a neighbour.
    Reports peak RSS and peak anonymous memory (RSS less file-backed pages such as mmapped IR
    weights, which the kernel can drop under pressure), the child's, plus its own children's
    unique pages (USS). memory_limit: bytes the child may use
    at most, in a memory cgroup of its own (benchmarks.memlimit); the report then says what the
    cgroup peaked at and whether the limit killed it. Written by hand: neither psutil nor
    subprocess reports a running child's peak."""
    if memory_limit is None:
        return _run_measured(command, min_available_bytes)
    with MemoryLimit(memory_limit) as limit:
        report = _run_measured(command, min_available_bytes, limit.enter)
        return {**report, "memory_limit_peak_gb": round(limit.peak() / 2**30, 2),
                "killed_by_memory_limit": limit.oom_killed(),
                "page_cache_emptied": limit.page_cache_emptied}


def _run_measured(command: list[str], min_available_bytes: int, preexec_fn=None) -> dict:
    start = time.perf_counter()
    child = psutil.Popen(command, stdout=sys.stdout, stderr=sys.stderr, preexec_fn=preexec_fn)
    peak, peak_anon, stopped, timeline = 0, 0, threading.Event(), []

    def watch():
        nonlocal peak, peak_anon
        while child.poll() is None:
            try:  # a child's own pages only (USS): a forked one (the compiled-model store's
                # export) maps its parent's pages too, which RSS would count twice
                info = child.memory_info()
                own = sum(p.memory_full_info().uss for p in child.children(recursive=True))
            except psutil.Error:
                continue
            rss, anon = info.rss + own, info.rss - info.shared + own
            peak, peak_anon = max(peak, rss), max(peak_anon, anon)
            seconds = time.perf_counter() - start
            if not timeline or seconds - timeline[-1][0] >= 5:  # a coarse profile, for phases
                timeline.append((round(seconds), round(rss / 2**30, 2), round(anon / 2**30, 2)))
                print(f"[memory] {seconds:5.0f} s  rss {rss / 2**30:5.2f} GB  "
                      f"anon {anon / 2**30:5.2f} GB", file=sys.stderr, flush=True)
            if psutil.virtual_memory().available < min_available_bytes:
                stopped.set()
                child.kill()
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    returncode = child.wait()
    watcher.join()
    return {"returncode": returncode, "stopped_out_of_memory": stopped.is_set(),
            "peak_rss_gb": round(peak / 2**30, 2), "peak_anon_gb": round(peak_anon / 2**30, 2),
            "seconds": round(time.perf_counter() - start, 1),
            "timeline_s_rss_anon_gb": timeline}


def memory_now() -> dict:
    """This process's RSS and anonymous memory (RSS less file-backed pages, such as the mmapped
    IR weights the kernel can drop again), in GB: what a model keeps once it has served."""
    info = psutil.Process().memory_info()
    return {"rss_gb": round(info.rss / 2**30, 2),
            "anon_gb": round((info.rss - info.shared) / 2**30, 2)}


def time_unet(xml: str, repeats: int, precision: str | None = None) -> None:
    """Child process: compile one UNet (at OpenVINO's default precision unless given), time it,
    print one JSON line."""
    import numpy as np
    import openvino as ov

    start = time.perf_counter()
    config = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    compiled = ov.Core().compile_model(xml, "CPU", config)
    compile_seconds = time.perf_counter() - start
    rng = np.random.default_rng(0)
    inputs = {name: rng.standard_normal(shape).astype(np.float32)
              for name, shape in UNET_INPUTS.items()}
    inputs["timestep"] = np.array([999], dtype=np.int64)
    inputs["time_ids"] = np.array([[512, 512, 0, 0, 512, 512]], dtype=np.float32)
    request = compiled.create_infer_request()
    request.infer(inputs)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        request.infer(inputs)
        times.append(time.perf_counter() - start)
    print(json.dumps({"median_seconds": statistics.median(times), "seconds": times,
                      "compile_seconds": compile_seconds,
                      "precision": str(compiled.get_property("INFERENCE_PRECISION_HINT")),
                      "rss_gb": psutil.Process().memory_info().rss / 2**30}))


def compress_weights(fp16_xml: str, out_xml: str) -> None:
    """Child process: INT8 weight-only compression of the UNet (data-free, as FastSD CPU ships
    it): no statistics pass, so it fits where full quantization does not."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(fp16_xml)
    ov.save_model(nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM), out_xml)


def latency(xml: Path, repeats: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.int8_unet", "_time", str(xml),
                          str(repeats)], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    from benchmarks.full_size import build_full_size

    parser = argparse.ArgumentParser(prog="python -m benchmarks.int8_unet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--floor-gb", type=float, default=0.75,
                        help="stop the export when the machine has less memory available")
    parser.add_argument("--skip-export", action="store_true", help="reuse the INT8 folder")
    parser.add_argument("--weights-only", action="store_true",
                        help="time an INT8 weight-only UNet (nncf.compress_weights) instead")
    parser.add_argument("--compile-memory", action="store_true",
                        help="only measure the memory the FP16 UNet takes compiled and run once, "
                             "in f32 (as NNCF's statistics passes compile it) and in bf16")
    parser.add_argument("export_options", nargs="*", help="more options for python -m export")
    args = parser.parse_args(argv)

    fp16 = build_full_size("sdxl-turbo")
    models_dir = fp16.parent.parent
    int8 = models_dir / "sdxl-turbo" / "int8"
    report = {"benchmark": "int8_unet", "machine": machine.name(), "cpu": machine.cpu(),
              "cpu_count": os.cpu_count(),
              "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
              "samples": args.samples, "export_options": args.export_options}
    if args.compile_memory:
        xml = str(fp16 / "unet" / "openvino_model.xml")
        report["compile_memory"] = {
            precision: run_measured([sys.executable, "-m", "benchmarks.int8_unet", "_time", xml,
                                     "1", precision], int(args.floor_gb * 2**30))
            for precision in ("f32", "bf16")}
    elif args.weights_only:
        unet = models_dir / "sdxl-turbo" / "int8-weights" / "unet"
        unet.mkdir(parents=True, exist_ok=True)
        report["variant"] = "int8 weights only (nncf.compress_weights INT8_ASYM)"
        report["export"] = run_measured(
            [sys.executable, "-m", "benchmarks.int8_unet", "_compress",
             str(fp16 / "unet" / "openvino_model.xml"), str(unet / "openvino_model.xml")],
            int(args.floor_gb * 2**30))
        int8 = unet.parent
    elif not args.skip_export:
        command = [sys.executable, "-m", "export", "sdxl-turbo", "--variant", "int8",
                   "--models-dir", str(models_dir), "--samples", str(args.samples),
                   *args.export_options]
        report["command"] = " ".join(command[1:])
        report["export"] = run_measured(command, int(args.floor_gb * 2**30))
        print(json.dumps(report["export"]), flush=True)
    unets = {"fp16": fp16 / "unet", "int8": int8 / "unet"}
    exported = report.get("export", {}).get("returncode") == 0 or args.skip_export
    if exported and (unets["int8"] / "openvino_model.xml").is_file():
        report["unet_bytes"] = {v: (unet / "openvino_model.bin").stat().st_size
                                for v, unet in unets.items()}
        report["latency"] = {v: latency(unet / "openvino_model.xml", args.repeats)
                             for v, unet in unets.items()}
        report["int8_speedup"] = (report["latency"]["fp16"]["median_seconds"]
                                  / report["latency"]["int8"]["median_seconds"])
    RESULTS.mkdir(exist_ok=True)
    options = ("compile-memory" if args.compile_memory else "weights-only" if args.weights_only
               else "".join(args.export_options) or "defaults")
    path = RESULTS / f"int8_unet-{machine.name()}-{options.strip('-')}.json"
    results.write(path.with_suffix(""), report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["_time"]:  # the child process of latency()
        time_unet(*sys.argv[2:3], int(sys.argv[3]), *sys.argv[4:5])
    elif sys.argv[1:2] == ["_compress"]:
        compress_weights(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
