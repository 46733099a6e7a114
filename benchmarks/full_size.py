"""Full-size stand-ins: the real architectures (benchmarks/sdxl_architectures.json) with random
weights, exported with optimum-intel exactly as the real models are. Same graphs, FLOPs and
sizes as the real models, so speed and memory measured on them hold for the real ones; their
images are noise. `python -m benchmarks.standins` builds the folders the benchmarks need.

Each heavy step runs in a child process of its own (`python -m benchmarks.full_size _save` /
`_export`), so the torch model never sits in memory next to OpenVINO's copy: on a 24 GB
machine that OOMs."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ARCHITECTURES = Path(__file__).resolve().parent / "sdxl_architectures.json"


def default_cache() -> Path:
    return Path(os.environ.get("TURBO_STANDINS_DIR",
                               Path.home() / ".cache" / "turbo-studio" / "standins"))


def build_full_size(model_id: str = "sdxl-turbo", cache_dir: Path | None = None) -> Path:
    """The exported FP16 folder of the full-size stand-in, built on first use (10-20 min)."""
    out = Path(cache_dir or default_cache()) / model_id / "fp16"
    if (out / "model_index.json").is_file():
        return out
    source = out.parent / ".source"
    for step, args in (("build", ["_save", str(source)]),
                       ("export", ["_export", str(source), str(out)])):
        start = time.perf_counter()
        print(f"[standins] {step}…", flush=True)
        subprocess.run([sys.executable, "-m", "benchmarks.full_size", *args], check=True)
        print(f"[standins] {step} took {time.perf_counter() - start:.0f} s", flush=True)
    shutil.rmtree(source)
    return out


def save_source(folder: Path) -> None:
    """Child process: the diffusers pipeline with random weights, saved in FP16 (half the disk
    and memory; the export writes FP16 weights anyway)."""
    import torch
    from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler,
                           StableDiffusionXLPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from export.tiny import hand_tokenizer

    reference = json.loads(ARCHITECTURES.read_text())
    tokenizer = hand_tokenizer(folder.parent / ".tokenizer")
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)  # a child process of its own: no caller's RNG to disturb
    torch.set_default_dtype(torch.float16)  # initialise in FP16: 5 GB for the UNet, not 10
    unet = UNet2DConditionModel.from_config(reference["sdxl_unet"]["config"])
    text_encoder = CLIPTextModel(CLIPTextConfig(**reference["text_encoder"]["config"], **ids))
    text_encoder_2 = CLIPTextModelWithProjection(
        CLIPTextConfig(**reference["text_encoder_2"]["config"], **ids))
    torch.set_default_dtype(torch.float32)  # the VAE overflows in FP16 (force_upcast)
    vae = AutoencoderKL.from_config(reference["sdxl_vae"]["config"])
    scheduler_config = {k: v for k, v in reference["schedulers"]["sdxl-turbo"].items()
                        if k not in ("class", "steps", "guidance_scale", "size")}
    pipeline = StableDiffusionXLPipeline(
        vae=vae, unet=unet, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=tokenizer, tokenizer_2=tokenizer,
        scheduler=EulerAncestralDiscreteScheduler(**scheduler_config))
    for name, model in (("unet", unet), ("text_encoder", text_encoder),
                        ("text_encoder_2", text_encoder_2), ("vae", vae)):
        count = sum(p.numel() for p in model.parameters())
        expected = reference["sdxl_vae" if name == "vae" else
                             "sdxl_unet" if name == "unet" else name]["params"]
        print(f"[standins] {name}: {count:,} parameters (reference {expected:,})", flush=True)
    pipeline.save_pretrained(folder)


def export_source(source: Path, out: Path) -> None:
    """Child process: optimum-intel export (FP16 weights) through the app's own exporter."""
    from export import convert, manifest

    start = time.perf_counter()
    staged = out.parent / ".exporting"
    shutil.rmtree(staged, ignore_errors=True)
    convert.export_pipeline(source, staged)
    manifest.write(staged, model_id=out.parent.name, variant="fp16",
                   source=f"full-size stand-in from {ARCHITECTURES.name} (random weights)",
                   method="optimum-intel export, fp16 weights",
                   seconds=time.perf_counter() - start)
    if out.exists():
        shutil.rmtree(out)
    staged.rename(out)


def main(argv: list[str]) -> int:
    """The child processes' steps: `_save SOURCE` and `_export SOURCE OUT`."""
    if argv[:1] == ["_save"]:
        save_source(Path(argv[1]))
    elif argv[:1] == ["_export"]:
        export_source(Path(argv[1]), Path(argv[2]))
    else:
        raise SystemExit("usage: python -m benchmarks.full_size _save SOURCE | _export SOURCE OUT")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
