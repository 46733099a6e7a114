"""The full-size stand-ins the benchmarks need (benchmarks.full_size: the real architectures
with random weights, exported as the real models are), built where missing.

    python -m benchmarks.standins [--configs a0,e-int8-taesd,...] [--quick]

builds, once and in order, every folder the chosen configurations of `python -m benchmarks`
need (default: all of them): SDXL-Turbo FP16, TAESD-XL FP16 and INT8, the NNCF INT8 UNet, the
INT8 weight-compressed UNet, the diffusers source for PyTorch (benchmarks.folders). What is
already there is kept. The FP16 build and the INT8 UNet export are the long steps (minutes
each)."""

import argparse
import sys

from benchmarks import folders
from benchmarks.runners import CONFIGS


def main(argv: list[str]) -> int:
    """Every stand-in the chosen configurations need, built in order where missing."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.standins",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS), type=lambda v: v.split(","),
                        help="comma-separated keys of python -m benchmarks, default all: "
                             "%(default)s")
    parser.add_argument("--quick", action="store_true", help="the tiny stand-in's folders")
    args = parser.parse_args(argv)
    unknown = [key for key in args.configs if key not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration {', '.join(unknown)}; choose from "
                     f"{', '.join(CONFIGS)}")
    needs = set().union(*(CONFIGS[key].needs for key in args.configs))
    print(folders.prepare(args.quick, needs).models_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
