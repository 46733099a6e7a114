"""LoRA fusing before export: a LoRA (Segmind-VegaRT, an LCM-LoRA) loaded into its base diffusers
SDXL pipeline (Segmind-Vega) and merged into the UNet's weights, saved as a plain diffusers
folder that optimum-intel then exports like any other.

Fused before export because the exported UNet then costs nothing extra per step, and
openvino.genai's run-time LoRA rejects the 3×3 convolution LoRA tensors that LCM-LoRAs carry."""

from pathlib import Path


def fuse(source: str | Path, lora: str | Path, out: Path) -> Path:
    """Save `source` (a Hub id or a diffusers folder) with `lora` (a Hub id or a folder in
    diffusers' LoRA format) fused into it, as a diffusers folder at `out`. Needs peft."""
    from diffusers import StableDiffusionXLPipeline

    pipeline = StableDiffusionXLPipeline.from_pretrained(str(source))
    # A local folder: name its weights file, which diffusers cannot guess in offline mode.
    weights = sorted(Path(lora).glob("*.safetensors")) if Path(lora).is_dir() else []
    pipeline.load_lora_weights(str(lora), weight_name=weights[0].name if weights else None)
    pipeline.fuse_lora()
    pipeline.unload_lora_weights()  # drops the LoRA layers; the fused weights stay
    pipeline.save_pretrained(out)
    return out
