"""python -m benchmarks.split_memory: how the memory of INT8 calibration scales with --split.

Measures export.quantize.quantize_in_pieces (and, for 1 piece, one nncf.quantize over the whole
UNet, as optimum-intel runs it) on a mid-size SDXL-like UNet with random weights (464 MB of FP16
weights, a tenth of SDXL's), small enough for a shared 24 GB machine. Each piece count runs in
its own child process; reported: the process's growth in anonymous memory (RSS less
file-backed pages) while quantizing, the peak disk taken by the tensors crossing the cuts, and
the time. Calibration inputs are random (memory does not depend on their values). Results go
to benchmarks/results/split_memory-<host>.json; docs/models.md's "Split calibration" quotes them."""

import argparse
import json
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from benchmarks import report as results

RESULTS = Path(__file__).resolve().parent / "results"
INPUTS = {"sample": (1, 4, 64, 64), "encoder_hidden_states": (1, 77, 2048),
          "text_embeds": (1, 1280), "time_ids": (1, 6)}  # and timestep, an int64 of shape (1,)
ORDER = ("sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids")


def build(xml: Path) -> None:
    """Child process: the mid-size UNet (SDXL's conditioning and block layout, narrower and
    shallower) converted to IR with FP16 weights."""
    import openvino as ov
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64, layers_per_block=2, block_out_channels=(160, 320, 640),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(5, 10, 20), use_linear_projection=True,
        transformer_layers_per_block=(1, 1, 2), cross_attention_dim=2048,
        addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816).eval()

    class Unet(torch.nn.Module):  # SDXL's UNet inputs as separate tensors, as optimum exports
        def __init__(self):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
            conditions = {"text_embeds": text_embeds, "time_ids": time_ids}
            return self.unet(sample, timestep, encoder_hidden_states,
                             added_cond_kwargs=conditions, return_dict=False)[0]

    example = {name: torch.randn(INPUTS[name]) if name in INPUTS else torch.tensor([999])
               for name in ORDER}
    with torch.no_grad():
        model = ov.convert_model(Unet(), example_input=example)
    for port, name in zip(model.inputs, ORDER):
        port.get_tensor().set_names({name})
    ov.save_model(model, xml)


def measure(xml: Path, pieces: int, samples: int) -> None:
    """Child process: quantize in `pieces`, print one JSON line of what it took."""
    import nncf
    import numpy as np
    import openvino as ov

    from export import quantize

    rng = np.random.default_rng(0)
    data = [{"timestep": np.array([999 - 50 * i]),
             **{name: rng.standard_normal(shape, dtype=np.float32)
                for name, shape in INPUTS.items()}}
            for i in range(samples)]
    out = xml.parent / f"pieces-{pieces}"
    out.mkdir(exist_ok=True)
    process = psutil.Process()
    anon = lambda: (lambda m: m.rss - m.shared)(process.memory_info())  # noqa: E731
    base, peak, disk, done = anon(), [0, 0], out, threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], anon())
            peak[1] = max(peak[1], sum(f.stat().st_size for f in disk.rglob("*.npy")))
            time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()
    start = time.perf_counter()
    config = quantize.unet_config("full", ov.Core().read_model(xml), samples)
    if pieces == 1:  # what optimum-intel's OVQuantizer does with the UNet
        arguments = config.to_nncf_dict()
        arguments.pop("weight_only", None)
        quantized = nncf.quantize(ov.Core().read_model(xml), nncf.Dataset(data), **arguments)
        ov.save_model(quantized, out / "openvino_model.xml")
    else:
        quantize.quantize_in_pieces(xml, out / "openvino_model.xml", data, config, pieces)
    done.set()
    print(json.dumps({"pieces": pieces, "seconds": round(time.perf_counter() - start, 1),
                      "growth_anon_gb": round((peak[0] - base) / 2**30, 2),
                      "peak_cut_tensors_mb": round(peak[1] / 2**20, 1)}))


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m benchmarks.split_memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # One pass (--pieces 1) took 5.6 GB RSS at peak: more than a process may take on a shared
    # machine, so it is not in the default list.
    parser.add_argument("--pieces", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--samples", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="split-memory-") as work:
        xml = Path(work) / "unet.xml"
        child = [sys.executable, "-m", "benchmarks.split_memory"]
        subprocess.run([*child, "_build", str(xml)], check=True)
        report = {"benchmark": "split_memory", "machine": platform.node(),
                  "unet_fp16_bytes": xml.with_suffix(".bin").stat().st_size,
                  "samples": args.samples, "runs": []}
        for pieces in args.pieces:
            out = subprocess.run([*child, "_measure", str(xml), str(pieces), str(args.samples)],
                                 check=True, capture_output=True, text=True).stdout
            report["runs"].append(json.loads(out.strip().splitlines()[-1]))
            print(report["runs"][-1], flush=True)
    path = RESULTS / f"split_memory-{platform.node()}.json"
    results.write(path.with_suffix(""), report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["_build"]:
        build(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["_measure"]:
        measure(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(main())
