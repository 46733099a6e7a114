"""python -m benchmarks.text_encoders [--quick] [--prompts N]: what INT8 text encoders (the INT8
variant's default since `python -m export ... --variant int8` compresses them) cost in image
quality and save in memory and time.

The INT8 stand-in as exported (INT8 UNet, INT8-weight text encoders) against the same folder with
the FP16 export's text encoders linked in, every other file the same. Each side runs in its own
child process (benchmarks.int8_unet.run_measured: peak RSS and peak anonymous memory): W1,
text-to-image at the model's default size in one step with the Tiny Autoencoder, for N prompts
with seed i each. Writes benchmarks/results/text_encoders-<machine>[-quick].json and .md: the
PSNR of each image pair (the comparison tab's measure), the text encoders' median seconds, their
size on disk, each side's memory, and the CPU."""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import folders as folders_module, machine, report
from benchmarks.int8_unet import RESULTS, memory_now, run_measured
from pipelines.layout import link_view

TEXT_ENCODERS = ("text_encoder", "text_encoder_2")
SIDES = ("int8", "fp16")  # the text encoders' weights


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_side"]:
        return _side(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.text_encoders",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tiny stand-in, in seconds")
    parser.add_argument("--prompts", type=int, default=4, choices=range(2, len(PROMPTS) + 1),
                        metavar="N", help=f"images per side, 2 to {len(PROMPTS)} "
                                          f"(default %(default)s)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder to write to")
    args = parser.parse_args(argv)
    folders = folders_module.prepare(args.quick, {"int8", "taesd"})
    int8 = folders.root / "int8"
    if _text_encoder_weights(int8) != "int8 weights":
        print(f"{int8}'s text encoders are FP16: export it again (python -m benchmarks.standins "
              f"after removing it) to compare", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="turbo-te-") as scratch:
        scratch = Path(scratch)
        sides = {side: _run_side(folders, _models_dir(folders, side, scratch), args.prompts,
                                 scratch / side) for side in SIDES}
        psnrs = _psnrs(scratch / "int8", scratch / "fp16", args.prompts)
    results = {
        "benchmark": "text_encoders", "machine": machine.name(), "cpu": machine.cpu(),
        "quick": args.quick,
        "model": folders.model_id, "prompts": args.prompts,
        "psnr_db": psnrs, "psnr_db_median": round(statistics.median(psnrs), 2),
        "text_encoders_disk_mb": {side: _disk_mb(folders, side) for side in SIDES},
        "sides": sides,
    }
    base = args.results / f"text_encoders-{machine.name()}{'-quick' if args.quick else ''}"
    report.publish(base, results, markdown(results))
    return 0


def _text_encoder_weights(folder: Path) -> str:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return "unknown"
    return json.loads(manifest.read_text()).get("quantization", {}).get("text_encoders", "fp16")


def _models_dir(folders, side: str, scratch: Path) -> Path:
    """A models folder for one side: the INT8 model (its text encoders as the side says) and
    the model's TAESD, as links."""
    models = scratch / f"models-{side}"
    replace = ({name: folders.root / "fp16" / name for name in TEXT_ENCODERS}
               if side == "fp16" else {})
    link_view(models / folders.model_id / "int8", folders.root / "int8", replace)
    (models / folders.autoencoder_id).symlink_to(folders.models_dir / folders.autoencoder_id)
    return models


def _run_side(folders, models: Path, prompts: int, out: Path) -> dict:
    out.mkdir(parents=True)
    command = [sys.executable, "-m", "benchmarks.text_encoders", "_side", str(models),
               folders.model_id, str(prompts), str(out)]
    memory = run_measured(command, 2**30)
    if memory["returncode"] != 0:
        raise SystemExit(f"the side {models} failed (exit {memory['returncode']})")
    timings = json.loads((out / "timings.json").read_text())
    return {**timings, "peak_rss_gb": memory["peak_rss_gb"],
            "peak_anon_gb": memory["peak_anon_gb"]}


def _side(argv: list[str]) -> int:
    """The child: load the INT8 model, make the images, write them and the timings."""
    from pipelines import generate
    from pipelines.registry import Registry
    from pipelines.requests import Text2Image, validate

    models, model_id, prompts, out = Path(argv[0]), argv[1], int(argv[2]), Path(argv[3])
    start = time.perf_counter()
    registry = Registry(models, cache=False)
    loaded = registry.get(model_id, "int8")
    load_seconds = time.perf_counter() - start
    size = int(loaded.spec.size.default)
    seconds, after_first = [], None
    for i, prompt in enumerate(PROMPTS[:prompts]):
        request = validate(Text2Image(prompt=prompt, model_id=model_id, variant="int8", seed=i,
                                      steps=1, width=size, height=size, fast_decoder=True),
                           registry.catalogue)
        result = generate.run(loaded, request)
        result.image.save(out / f"{i}.png")
        seconds.append(result.timings["text encoders"])
        if after_first is None:
            after_first = memory_now()
    (out / "timings.json").write_text(json.dumps({
        "load_seconds": round(load_seconds, 2),
        # After the first image, whose first inference also repacks the weights.
        "text_encoders_seconds_median": round(statistics.median(seconds[1:]), 3),
        "after_first_image": after_first}))
    return 0


def _psnrs(a: Path, b: Path, prompts: int) -> list[float]:
    from PIL import Image

    from pipelines.compare import psnr

    return [round(psnr(Image.open(a / f"{i}.png"), Image.open(b / f"{i}.png")), 2)
            for i in range(prompts)]


def _disk_mb(folders, side: str) -> float:
    from pipelines.registry import folder_sizes

    sizes = folder_sizes(folders.root / side)
    return round(sum(sizes[name] for name in TEXT_ENCODERS) / 2**20, 1)


def markdown(results: dict) -> str:
    sides = results["sides"]
    rows = [f"| {side} | {results['text_encoders_disk_mb'][side]} | "
            f"{sides[side]['text_encoders_seconds_median']} | {sides[side]['peak_rss_gb']} | "
            f"{sides[side]['peak_anon_gb']} | {sides[side]['after_first_image']['rss_gb']} |"
            for side in SIDES]
    return "\n".join([
        f"### {results['machine']}: INT8 vs FP16 text encoders, {results['model']} INT8 "
        f"({'tiny stand-in' if results['quick'] else 'full-size stand-in'})",
        "",
        f"CPU: {results['cpu']['name']} (default precision "
        f"{results['cpu']['default_precision']}). {results['prompts']} images per side, "
        f"text-to-image in one step with TAESD, seed i each; the text encoders' time is the "
        f"median of the images after the first.",
        "",
        "| text encoders | on disk MB | text encoders s (median) | peak RSS GB | peak anon GB "
        "| RSS after the first image GB |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"PSNR of the INT8-text-encoder image against the FP16 one, per image: "
        f"{', '.join(f'{p} dB' for p in results['psnr_db'])} (median "
        f"{results['psnr_db_median']} dB).",
        "",
    ])


PROMPTS = [
    "a cinematic photo of a red fox in a snowy forest at sunrise, detailed fur",
    "an oil painting of a lighthouse on a cliff at dusk",
    "a bowl of ramen on a wooden table, studio lighting",
    "a watercolor of a hot air balloon over green hills",
    "a futuristic city street at night in the rain, neon signs",
    "a close-up portrait of an old fisherman, black and white",
    "a cozy reading nook with a cat asleep on a blanket",
    "a mountain lake reflecting snowy peaks, morning mist",
]


if __name__ == "__main__":
    sys.exit(main())
