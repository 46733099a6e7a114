"""python -m export MODEL [--variant fp16] [--out DIR]: make a catalogue model servable.

Exports with optimum-intel into <models dir>/<model>/<variant>/ and writes manifest.json there."""

import argparse
import sys
from pathlib import Path

from export import convert, export_model
from pipelines import catalogue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("model", choices=sorted(catalogue.MODELS))
    parser.add_argument("--variant", default="fp16")
    parser.add_argument("--models-dir", type=Path, help="default: TURBO_MODELS_DIR or ./models")
    parser.add_argument("--out", type=Path, help="write exactly here instead")
    args = parser.parse_args(argv)
    try:
        out = export_model(args.model, args.variant, args.models_dir, args.out)
    except (convert.HubUnreachable, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"exported {args.model} ({args.variant}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
