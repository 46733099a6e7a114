"""turbo-studio without the UI.

    python -m pipelines generate "a red fox" --model sdxl-turbo --variant int8 --steps 1 \\
        --seed 42 -o fox.png
    python -m pipelines generate "an oil painting" --image photo.png --strength 0.5 -o painting.png
    python -m pipelines generate "a red fox" -n 4 --seed 42 -o fox.png   # fox-42.png ... fox-45.png
    python -m pipelines generate "a red door" --image photo.png --mask mask.png -o door.png
    python -m pipelines list

The PNG carries the generation settings as text chunks (see pipelines/pngmeta.py). Input the
model cannot take ends with a message and exit status 2."""

import argparse
import sys
from pathlib import Path

from pipelines import catalogue, ir_precision, pngmeta, settings, user_models
from pipelines.errors import UserError
from pipelines.requests import (Image2Image, Inpaint, InvalidRequest, Text2Image, load_image,
                                load_mask, seeds, single, validate)
from pipelines.threads import on_a_worker_thread

USAGE_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    args, chosen = settings.parse(parser(), argv)
    try:
        return args.command(args, chosen)
    except UserError as e:  # anything else keeps its traceback
        print(f"error: {e}", file=sys.stderr)
        return USAGE_ERROR


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(required=True, metavar="COMMAND")

    gen = commands.add_parser("generate", help="make an image, or a batch of up to 4")
    gen.set_defaults(command=generate)
    gen.add_argument("prompt")
    gen.add_argument("--model", default=catalogue.DEFAULT_MODEL,
                     help="a model of `python -m pipelines list` (built-in or your own)")
    gen.add_argument("--variant", default="fp16")
    gen.add_argument("--steps", type=int, help="default: the model's")
    gen.add_argument("--seed", type=int, help="default: random (printed)")
    gen.add_argument("-n", "--images", type=int, default=1,
                     help="how many images, 1-4; image i uses seed + i (default: 1)")
    gen.add_argument("--width", type=int, help="text-to-image only; default: the model's")
    gen.add_argument("--height", type=int, help="text-to-image only; default: the model's")
    gen.add_argument("--guidance", type=float, help="default: the model's")
    gen.add_argument("--image", type=Path, help="transform this image (image-to-image)")
    gen.add_argument("--mask", type=Path,
                     help="inpainting: change only where this image is white (or opaque, if it "
                          "has transparency); the same size as --image")
    gen.add_argument("--strength", type=float, help="image-to-image: how much to change")
    gen.add_argument("--no-fast-decoder", dest="fast_decoder", action="store_const", const=False,
                     help="decode with the full VAE instead of TAESD")
    gen.add_argument("-o", "--output", type=Path,
                     help="PNG to write (default: <model>-<seed>.png); of a batch, each image "
                          "gets its seed: OUTPUT-<seed>.png")
    _location_options(gen)

    listing = commands.add_parser("list", help="models, variants, what is exported, sizes")
    listing.set_defaults(command=list_models)
    _location_options(listing)
    return top


def _location_options(command: argparse.ArgumentParser) -> None:
    settings.add_flags(command, settings.SERVING)


def generate(args, chosen: settings.Settings) -> int:
    models = user_models.load(chosen.models_dir)  # the built-ins and the folder's user models
    _warn(models)
    request = validate(_request(args), models)  # before loading anything heavy
    outputs = {seed: _output(args.output, request, seed) for seed in seeds(request)}
    folder = next(iter(outputs.values())).parent
    if not folder.is_dir():
        raise InvalidRequest(f"Cannot write {args.output}: {folder} is not a folder.")

    from tqdm import tqdm

    from pipelines import device, generate as runner
    from pipelines.registry import Registry

    device.check(chosen)
    registry = Registry.from_settings(chosen)
    print(f"Loading {request.model_id} ({request.variant}); the first load compiles it…",
          file=sys.stderr)
    loaded = registry.get(request.model_id, request.variant)
    bar = None

    def on_step(done: int, total: int) -> None:
        nonlocal bar
        if bar is None or bar.n >= bar.total:  # the first step of an image
            if bar:
                bar.close()
            bar = tqdm(total=total, desc="Denoising", unit="step")
        bar.update(done - bar.n)

    results = on_a_worker_thread(lambda: runner.run_all(loaded, request, on_step=on_step))
    if bar:
        bar.close()
    for warning in results[0].warnings:  # the same for every image of a batch
        print(f"warning: {warning}", file=sys.stderr)
    for result in results:
        output = outputs[result.seed]
        pngmeta.save(pngmeta.tag(result, single(request, result.seed), models), output)
        stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in result.timings.items())
        print(f"{output} · seed {result.seed} · {stages}")
    return 0


def _output(given: Path | None, request: Text2Image, seed: int) -> Path:
    """Where an image goes: as given, or <model>-<seed>.png; in a batch, <given>-<seed>.png."""
    if given is None:
        return Path(f"{request.model_id}-{seed}.png")
    return given if request.images == 1 else given.with_name(f"{given.stem}-{seed}{given.suffix}")


def _request(args) -> Text2Image:
    common = dict(prompt=args.prompt, model_id=args.model, variant=args.variant, seed=args.seed,
                  steps=args.steps, guidance=args.guidance, fast_decoder=args.fast_decoder,
                  images=args.images)
    if args.image is None:
        if args.strength is not None:
            raise InvalidRequest("--strength applies to image-to-image: give --image too.")
        if args.mask is not None:
            raise InvalidRequest("--mask applies to inpainting: give --image too.")
        return Text2Image(width=args.width, height=args.height, **common)
    if args.width or args.height:
        raise InvalidRequest("Image-to-image works at the model's size: leave out --width "
                             "and --height.")
    if args.mask is not None:
        return Inpaint(image=load_image(args.image), mask=load_mask(args.mask),
                       strength=args.strength, **common)
    return Image2Image(image=load_image(args.image), strength=args.strength, **common)


def list_models(args, chosen: settings.Settings) -> int:
    from pipelines.registry import Registry

    registry = Registry.from_settings(chosen)
    print(f"models folder: {registry.models_dir}")
    _warn(registry.catalogue)
    for spec in registry.catalogue.models.values():
        mine = f", your model on {spec.base}'s settings" if spec.base else ""
        print(f"\n{spec.id}: {spec.name} ({spec.source or 'built locally'}{mine})")
        for variant in spec.variants:
            read = registry.label(spec.id, variant)
            what = f" [{ir_precision.describe(read)}, read from its UNet]" if read else ""
            print(f"  {variant:5} {_where(registry, spec.id, variant)}{what}")
    print("\nfast decoders (Tiny Autoencoders):")
    for autoencoder in catalogue.AUTOENCODERS.values():
        folder = registry.autoencoder_folder(autoencoder.id)
        if folder.is_dir():
            state = f"exported, {_size(folder)}"
        elif registry.has_autoencoder(autoencoder.id):
            state = f"pre-exported {autoencoder.hub_export}, in the Hugging Face cache"
        else:
            state = f"not exported: {catalogue.export_command(autoencoder.id)}"
        print(f"  {autoencoder.id}: {state}")
    return 0


def _warn(models: catalogue.Catalogue) -> None:
    for problem in models.problems:
        print(f"warning: {problem}", file=sys.stderr)


def _where(registry, model_id: str, variant: str) -> str:
    spec = registry.catalogue.get(model_id)
    repo = spec.hub_exports.get(variant)
    if registry.is_exported(model_id, variant):
        return f"exported, {_size(registry.folder(model_id, variant))}"
    if (cached := registry.cached_hub_folder(model_id, variant)) is not None:
        return f"pre-exported {repo}, in the Hugging Face cache, {_size(cached)}"
    export = catalogue.export_command(model_id, variant, spec)
    if repo:
        return f"not here: downloads pre-exported {repo} on first use, or: {export}"
    return f"not exported: {export}"


def _size(folder: Path) -> str:
    from pipelines.registry import folder_sizes

    return f"{folder_sizes(folder)['total'] / 2**20:,.1f} MB in {folder}"


if __name__ == "__main__":
    sys.exit(main())
