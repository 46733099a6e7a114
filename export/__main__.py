"""python -m export MODEL [--variant fp16|int8] [options]: make a catalogue model servable.

Exports with optimum-intel into <models dir>/<model>/<variant>/ and writes manifest.json there.
--variant int8 quantizes the UNet of the FP16 export with NNCF (exporting FP16 first if needed)."""

import argparse
import sys
from pathlib import Path

from export import convert, export_model, quantize
from pipelines import catalogue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted(catalogue.MODELS))
    parser.add_argument("--variant", default="fp16")
    parser.add_argument("--models-dir", type=Path, help="default: TURBO_MODELS_DIR or ./models")
    parser.add_argument("--out", type=Path, help="write exactly here instead")
    int8 = parser.add_argument_group("int8 variant")
    int8.add_argument("--method", choices=quantize.METHODS, default="full",
                      help="full: INT8 weights and activations (default); hybrid: optimum-intel's "
                           "hybrid mode (INT8 weights of MatMuls, INT8 activations elsewhere)")
    int8.add_argument("--samples", type=int, default=quantize.DEFAULT_SAMPLES,
                      help="calibration samples (UNet calls); default %(default)s")
    int8.add_argument("--dataset", help="a Hub dataset with a caption column, instead of "
                                        "assets/calibration_prompts.txt (needs the Hub)")
    int8.add_argument("--compress-text-encoders", action="store_true",
                      help="INT8 weights for the two text encoders too")
    int8.add_argument("--no-smooth-quant", dest="smooth_quant", action="store_false",
                      help="skip SmoothQuant (less memory; see README)")
    int8.add_argument("--calibration-size", type=int, metavar="PIXELS",
                      help="calibrate at this width and height instead of the model's default "
                           "(smaller needs less memory; the INT8 graph is the same)")
    int8.add_argument("--no-bias-correction", dest="bias_correction", action="store_false",
                      help="skip fast bias correction (less memory; see README)")
    args = parser.parse_args(argv)
    try:
        out = export_model(args.model, args.variant, args.models_dir, args.out,
                           method=args.method, samples=args.samples, dataset=args.dataset,
                           compress_text_encoders=args.compress_text_encoders,
                           smooth_quant=args.smooth_quant,
                           bias_correction=args.bias_correction,
                           calibration_size=args.calibration_size)
    except (convert.HubUnreachable, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"exported {args.model} ({args.variant}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
