"""python -m export MODEL [--variant fp16|int8|int8-weights] [options]: make a catalogue model
   servable.
   python -m export standins: build every tiny stand-in an offline first start serves.
   python -m export pull MODEL [--variant V]: download a model's public pre-exported repo (and its
   fast decoder's) ahead of time and make it servable; needs only the serving install.
   python -m export push MODEL --variant V --repo USER/NAME: share an exported folder on the Hub.
   python -m export add NAME --from SOURCE [--base B] [--lora FILE_OR_REPO[:SCALE] ...]: your own
   model (a diffusers folder, a Hub repo or a single-file .safetensors checkpoint, LoRAs fused),
   served like the built-in ones; python -m export remove NAME deletes it.

Exports with optimum-intel into <models dir>/<model>/<variant>/ and writes manifest.json there
(a model with a LoRA, such as segmind-vegart, has it fused into the UNet first).
--variant int8 quantizes the UNet of the FP16 export with NNCF; --variant int8-weights compresses
the weights of every part to INT8 (both export FP16 first if needed); for a Tiny Autoencoder
(taesdxl), --variant int8 quantizes both of its halves, into <models dir>/<id>-int8/.
A problem the user can fix ends with one "error:" line and exit status 2; anything else keeps
its traceback."""

import argparse
import sys
from pathlib import Path

from export import export_autoencoder, export_model, quantize
from pipelines import catalogue, ir_precision, settings, user_models
from pipelines.errors import UserError
from pipelines.registry import Registry

USAGE_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = {"push": push_main, "pull": pull_main, "standins": standins_main,
               "add": add_main, "remove": remove_main}.get(argv[0] if argv else "")
    try:
        return command(argv[1:]) if command else export_main(argv)
    except UserError as e:  # anything else (NNCF, numpy, OpenVINO) keeps its traceback
        print(f"error: {e}", file=sys.stderr)
        return USAGE_ERROR


def export_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a model (built in, or yours: its int8 variants), or a "
                                      "Tiny Autoencoder (TAESD) that SDXL models can decode with")
    parser.add_argument("--taesd", action="store_true",
                        help="also export the model's Tiny Autoencoder if it is missing")
    parser.add_argument("--variant", default="fp16", choices=sorted(catalogue.VARIANTS),
                        help="fp16 (default), int8 or int8-weights, as the model offers (README's "
                             "models table); a Tiny Autoencoder's int8 is calibrated on the "
                             "latents of a model that decodes with it")
    settings.add_flags(parser, ("models_dir",))
    parser.add_argument("--out", type=Path, help="write exactly here instead")
    int8 = parser.add_argument_group("int8 variant")
    int8.add_argument("--method", choices=quantize.METHODS, default="full",
                      help="full: INT8 weights and activations (default); hybrid: optimum-intel's "
                           "hybrid mode (INT8 weights of MatMuls, INT8 activations elsewhere)")
    int8.add_argument("--samples", type=int, default=quantize.DEFAULT_SAMPLES,
                      help="calibration samples (UNet calls; for a Tiny Autoencoder, "
                           "pipeline runs); default %(default)s")
    int8.add_argument("--dataset", help="a Hub dataset with a caption column, instead of "
                                        "assets/calibration_prompts.txt (needs the Hub)")
    int8.add_argument("--compress-text-encoders", action=argparse.BooleanOptionalAction,
                      default=True,
                      help="INT8 weights (data-free) for the two text encoders too, the default: "
                           "a full-size INT8 model then serves in GBs less memory "
                           "(docs/models.md); --no-compress-text-encoders keeps them FP16")
    int8.add_argument("--no-smooth-quant", dest="smooth_quant", action="store_false",
                      help="skip SmoothQuant (less memory; see docs/models.md)")
    int8.add_argument("--calibration-size", type=int, metavar="PIXELS",
                      help="calibrate at this width and height instead of the model's default "
                           "(smaller needs less memory; the INT8 graph is the same)")
    int8.add_argument("--no-bias-correction", dest="bias_correction", action="store_false",
                      help="skip fast bias correction (less memory; see docs/models.md)")
    int8.add_argument("--split", type=int, metavar="N",
                      help="calibrate the UNet in N consecutive pieces, one NNCF pass each, then "
                           "stitch them: each pass holds one piece, not the whole UNet (default: "
                           "from this machine's RAM, e.g. 5 for the SDXL UNet with 24 GB, 8 with "
                           "16 GB, 1 with 128 GB; see docs/models.md)")
    args, chosen = settings.parse(parser, argv)
    known = [*user_models.load(chosen.models_dir).models, *catalogue.AUTOENCODERS]
    if args.model not in known:
        parser.error(f"argument model: invalid choice: {args.model!r} (choose from "
                     f"{', '.join(known)})")
    for name, out in _export(args, chosen.models_dir):
        print(f"exported {name} to {out}")
    return 0


def standins_main(argv: list[str]) -> int:
    from export import standins

    parser = argparse.ArgumentParser(prog="python -m export standins",
                                     description=standins.__doc__)
    settings.add_flags(parser, ("models_dir", "verbose"))
    _, chosen = settings.parse(parser, argv)
    standins.build(chosen.models_dir, verbose=chosen.verbose)
    return 0


def add_main(argv: list[str]) -> int:
    from export import user

    parser = argparse.ArgumentParser(
        prog="python -m export add", description=user.__doc__,
        epilog="Example: python -m export add my-style --from ./my-sdxl.safetensors "
               "--base sdxl-turbo --lora ./style.safetensors:0.8")
    parser.add_argument("name", help="the new model's id: lowercase letters, digits, dashes")
    parser.add_argument("--from", dest="source", required=True, metavar="SOURCE",
                        help="a diffusers folder, a Hub repo id, or a single-file .safetensors "
                             "checkpoint")
    parser.add_argument("--base", default="sdxl-turbo",
                        help=f"whose scheduler, steps, guidance, size and fast decoder it takes: "
                             f"{', '.join(user_models.BASES)} (default %(default)s)")
    parser.add_argument("--lora", action="append", default=[], type=user.Lora.parse,
                        metavar="FILE_OR_REPO[:SCALE]",
                        help="fuse this LoRA (.safetensors, a folder or a Hub repo) at SCALE "
                             "(default 1); repeat for more")
    parser.add_argument("--variant", default="fp16", help="fp16 (default), int8 or int8-weights")
    parser.add_argument("--config", metavar="FOLDER_OR_REPO",
                        help="single-file checkpoints: a diffusers folder of the base's "
                             "architecture to read it with (default: the base's Hub repo)")
    parser.add_argument("--steps", type=int, help="default steps instead of the base's")
    parser.add_argument("--guidance", type=float, help="default guidance instead of the base's")
    parser.add_argument("--size", type=int, help="default width and height instead of the base's")
    settings.add_flags(parser, ("models_dir",))
    args, chosen = settings.parse(parser, argv)
    out = user.add(args.name, args.source, chosen.models_dir, base=args.base,
                   loras=tuple(args.lora), variant=args.variant, config=args.config,
                   steps=args.steps, guidance=args.guidance, size=args.size)
    print(f"added {args.name} ({args.variant}) in {out}; serve it with --model {args.name} "
          f"(restart a running app to offer it)")
    return 0


def remove_main(argv: list[str]) -> int:
    from export import user

    parser = argparse.ArgumentParser(prog="python -m export remove",
                                     description="Delete one of your models (entry and folder).")
    parser.add_argument("name")
    settings.add_flags(parser, ("models_dir",))
    args, chosen = settings.parse(parser, argv)
    print(f"removed {args.name} and {user.remove(args.name, chosen.models_dir)}")
    return 0


def pull_main(argv: list[str]) -> int:
    models = {spec.id: spec for spec in catalogue.MODELS.values() if spec.hub_exports}
    parser = argparse.ArgumentParser(
        prog="python -m export pull",
        description="Download a model's public pre-exported OpenVINO repo from the Hugging Face "
                    "Hub into its cache (a progress bar per file), with its fast decoder's, and "
                    "make the servable view of it that the app then loads: no export, no torch.")
    parser.add_argument("model", choices=sorted(models))
    parser.add_argument("--variant", help="the variant whose repo to fetch (default: the "
                                          "model's first pre-exported one)")
    settings.add_flags(parser, ("models_dir",))
    args, chosen = settings.parse(parser, argv)
    spec = models[args.model]
    variant = args.variant or next(iter(spec.hub_exports))
    if variant not in spec.hub_exports:
        parser.error(f"{spec.name} has no pre-exported repo for {variant!r}; it has: "
                     f"{', '.join(f'{v} ({r})' for v, r in spec.hub_exports.items())}")
    registry = Registry(chosen.models_dir)
    folder = registry.fetch(spec.id, variant)
    registry.fetch_fast_decoder(spec.id)
    decoder = registry.autoencoder_for(spec, variant)
    label = registry.label(spec.id, variant)
    print(f"pulled {spec.name} ({variant}{f': {ir_precision.describe(label)}' if label else ''})"
          f" from {spec.hub_exports[variant]}; served from {folder}"
          f"{f', fast decoder from {decoder}' if decoder else ', no fast decoder'}")
    return 0


def push_main(argv: list[str]) -> int:
    from export import hub

    parser = argparse.ArgumentParser(prog="python -m export push",
                                     description="Upload an exported folder to the Hugging Face "
                                                 "Hub with a model card (README.md).")
    parser.add_argument("model", help="a model of the catalogue or one of yours (export add)")
    parser.add_argument("--variant", default="fp16")
    parser.add_argument("--repo", required=True, metavar="USER/NAME")
    parser.add_argument("--private", action="store_true")
    settings.add_flags(parser, ("models_dir",))
    args, chosen = settings.parse(parser, argv)
    url = hub.push(args.model, args.variant, args.repo, chosen.models_dir, private=args.private)
    print(f"pushed {args.model} ({args.variant}) to {url}")
    return 0


def _export(args, models_dir: Path):
    """Export what the command line asks for, yielding (what, folder) as each is done."""
    if args.model in catalogue.AUTOENCODERS:
        yield f"{args.model} ({args.variant})", export_autoencoder(
            args.model, models_dir, args.out, args.variant, args.samples)
        return
    yield f"{args.model} ({args.variant})", export_model(
        args.model, args.variant, models_dir, args.out, method=args.method,
        samples=args.samples, dataset=args.dataset,
        compress_text_encoders=args.compress_text_encoders, smooth_quant=args.smooth_quant,
        bias_correction=args.bias_correction, calibration_size=args.calibration_size,
        split=args.split)
    fast_decoder = user_models.load(models_dir).get(args.model).fast_decoder
    if not (args.taesd and fast_decoder):
        return
    registry = Registry(models_dir)
    # INT8 models get an INT8 TAESD too; a Tiny Autoencoder has no int8-weights variant.
    for variant in dict.fromkeys(("fp16", args.variant)):
        if variant in catalogue.AUTOENCODER_VARIANTS and not registry.has_autoencoder(
                fast_decoder, variant):
            yield f"{fast_decoder} ({variant})", export_autoencoder(
                fast_decoder, models_dir, variant=variant, samples=args.samples)


if __name__ == "__main__":
    sys.exit(main())
