"""python -m benchmarks.batch_unet: a batch of N images in one UNet call, or N calls of one?

generate.run_all makes the images of a batch one after another. This measures what one call on
a batch would gain: the UNet (--variant fp16 or int8) of the full-size SDXL-Turbo stand-in
(python -m benchmarks.standins, random weights; --quick: the tiny stand-in), compiled as the
app compiles it (dynamic shapes, LATENCY hint, the precision OpenVINO picks on this CPU), at
512², after one warm-up of each: --repeats × (N calls at batch 1) against --repeats × (1 call
at batch N). The UNet is most of a W1 image (2.24 of 2.99 s on the Zen 4 kind); the text
encoders run once either way (the prompt's encodings kept) and the TAESD decode is per image
either way. Writes
benchmarks/results/batch_unet-<machine>[-int8].json."""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import machine, report
from benchmarks.folders import existing, prepare
from benchmarks.int8_unet import RESULTS


def unet_inputs(compiled, batch: int, latent: int) -> dict:
    """Random inputs of the UNet's own shapes for `batch` images of latent × latent."""
    rng = np.random.default_rng(0)
    inputs = {}
    for port in compiled.inputs:
        name, dims = port.get_any_name(), port.get_partial_shape()
        if name == "sample":
            shape = [batch, dims[1].get_length(), latent, latent]
        elif name == "timestep":
            shape = [] if dims.rank.get_length() == 0 else [1]
        else:  # encoder_hidden_states, text_embeds, time_ids: batch first, the rest fixed
            shape = [batch] + [d.get_length() for d in list(dims)[1:]]
        inputs[name] = rng.standard_normal(shape).astype(np.float32)
    if "timestep" in inputs:
        inputs["timestep"] = np.full(inputs["timestep"].shape, 999, dtype=np.float32)
    return inputs


def seconds(request, inputs: dict) -> float:
    start = time.perf_counter()
    request.infer(inputs)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch_unet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tiny stand-in, in seconds")
    parser.add_argument("--variant", choices=("fp16", "int8"), default="fp16",
                        help="the UNet to time (int8: NNCF's, built by the benchmark's stand-ins)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder to write to")
    args = parser.parse_args(argv)

    import openvino as ov

    from pipelines.device import precision_hint, precision_of

    prepare(args.quick, {args.variant})
    folder = existing(args.quick).root / args.variant / "unet" / "openvino_model.xml"
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY"}
    hint = precision_hint("auto", "CPU", core)
    if hint:
        config["INFERENCE_PRECISION_HINT"] = hint
    compiled = core.compile_model(folder, "CPU", config)
    request = compiled.create_infer_request()
    one, batch = unet_inputs(compiled, 1, 64), unet_inputs(compiled, args.batch, 64)
    seconds(request, one), seconds(request, batch)  # warm-ups: first calls allocate
    loop = [sum(seconds(request, one) for _ in range(args.batch)) for _ in range(args.repeats)]
    together = [seconds(request, batch) for _ in range(args.repeats)]
    result = {
        "benchmark": "batch_unet", "machine": machine.name(), "cpu": machine.cpu(),
        "quick": args.quick,
        "model": str(folder), "precision": precision_of(compiled), "latent": 64,
        "batch": args.batch, "repeats": args.repeats,
        "one_by_one_seconds": loop, "one_call_seconds": together,
        "one_by_one_median_per_image": statistics.median(loop) / args.batch,
        "one_call_median_per_image": statistics.median(together) / args.batch,
    }
    result["one_call_over_one_by_one"] = (result["one_call_median_per_image"]
                                          / result["one_by_one_median_per_image"])
    name = (machine.name() + ("-quick" if args.quick else "")
            + ("" if args.variant == "fp16" else f"-{args.variant}"))
    out = args.results / f"batch_unet-{name}.json"
    report.write(out.with_suffix(""), result)
    print(json.dumps({k: v for k, v in result.items() if k != "cpu"}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
