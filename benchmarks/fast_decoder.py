"""python -m benchmarks.fast_decoder: full VAE vs TAESD-XL through the app's own serving path.

On the full-size SDXL-Turbo stand-in (python -m benchmarks.standins; random weights) and a
TAESD-XL of the real architecture (AutoencoderTiny's defaults, random weights, exported by
export/taesd.py): text-to-image (512², 1 step) and image-to-image (512², 2 steps, strength 0.5),
each decoder, through registry.get and generate.run as the app calls them. Median per stage of
--repeats after one warm-up. Writes benchmarks/results/fast_decoder-<host>.json."""

import argparse
import platform
import statistics
import sys

import psutil
from PIL import Image

from benchmarks import report as results
from benchmarks.int8_unet import RESULTS
from benchmarks.full_size import build_full_size


def full_size_taesd(models_dir) -> None:
    """The TAESD-XL architecture with random weights, exported once into the stand-ins' folder."""
    import torch
    from diffusers import AutoencoderTiny

    from export import taesd
    from pipelines.registry import Registry

    registry = Registry(models_dir)
    if not registry.has_autoencoder("taesdxl"):
        torch.manual_seed(0)
        taesd.export_autoencoder(AutoencoderTiny(), registry.autoencoder_folder("taesdxl"))


def main(argv: list[str] | None = None) -> int:
    from pipelines import generate
    from pipelines.registry import Registry
    from pipelines.requests import Image2Image, Text2Image, validate

    parser = argparse.ArgumentParser(prog="python -m benchmarks.fast_decoder", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    models_dir = build_full_size("sdxl-turbo").parent.parent
    full_size_taesd(models_dir)
    loaded = Registry(models_dir).get("sdxl-turbo", "fp16")
    source = Image.radial_gradient("L").convert("RGB").resize((512, 512))
    tasks = {"text-to-image": lambda fast: Text2Image("a red fox", model_id="sdxl-turbo", seed=1,
                                                      fast_decoder=fast),
             "image-to-image": lambda fast: Image2Image("a red fox", model_id="sdxl-turbo",
                                                        seed=1, fast_decoder=fast, image=source,
                                                        steps=2, strength=0.5)}
    report = {"benchmark": "fast_decoder", "machine": platform.node(), "repeats": args.repeats,
              "load_seconds": round(loaded.load_seconds, 1), "median_seconds": {}}
    for task, make in tasks.items():
        for decoder, fast in (("full VAE", False), ("TAESD-XL", True)):
            request = validate(make(fast))
            generate.run(loaded, request)  # warm-up
            runs = [generate.run(loaded, request).timings for _ in range(args.repeats)]
            medians = {stage: round(statistics.median(run[stage] for run in runs), 3)
                       for stage in runs[0]}
            report["median_seconds"][f"{task}, {decoder}"] = medians
            print(task, decoder, medians, flush=True)
        full, fast = (report["median_seconds"][f"{task}, {d}"]["total"]
                      for d in ("full VAE", "TAESD-XL"))
        report[f"{task} speedup"] = round(full / fast, 2)
    report["rss_gb_both_decoders_loaded"] = round(psutil.Process().memory_info().rss / 2**30, 2)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"fast_decoder-{platform.node()}.json"
    results.write(path.with_suffix(""), report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
