"""LoRA fusing before export: LoRAs (Segmind-VegaRT, an LCM-LoRA, or a user's style LoRAs) loaded
into their base diffusers SDXL pipeline and merged into its weights at their scales, saved as a
plain diffusers folder that optimum-intel then exports like any other.

Fused before export because the exported UNet then costs nothing extra per step, and
openvino.genai's run-time LoRA rejects the 3×3 convolution LoRA tensors that LCM-LoRAs carry."""

import logging
from contextlib import contextmanager
from pathlib import Path

from pipelines.errors import InvalidRequest


def fuse(source: str | Path, lora: str | Path, out: Path) -> Path:
    """Save `source` (a Hub id or a diffusers folder) with `lora` (a Hub id or a folder in
    diffusers' LoRA format) fused into it, as a diffusers folder at `out`. Needs peft."""
    from diffusers import StableDiffusionXLPipeline

    pipeline = StableDiffusionXLPipeline.from_pretrained(str(source))
    fuse_into(pipeline, [(lora, 1.0)])
    pipeline.save_pretrained(out)
    return out


def fuse_into(pipeline, loras: list[tuple[str | Path, float]]) -> None:
    """Load every LoRA (each checked to fit, see load), fuse them at their scales, then drop
    the LoRA layers; the fused weights stay."""
    names = [load(pipeline, lora, f"lora{i}") for i, (lora, _) in enumerate(loras)]
    if not names:
        return
    pipeline.set_adapters(names, adapter_weights=[scale for _, scale in loras])
    pipeline.fuse_lora(adapter_names=names)
    pipeline.unload_lora_weights()


def load(pipeline, lora: str | Path, name: str) -> str:
    """Load `lora` (a Hub id, a folder, or a .safetensors file) as adapter `name`, refusing one
    that does not fit this pipeline: peft raises on a shape mismatch (another architecture), and
    diffusers only logs a warning for keys that match no module, and loads nothing where no key
    matches: both are refused here."""
    path = Path(lora)
    folder, weight = (path.parent, path.name) if path.is_file() else (lora, None)
    if path.is_dir():  # name its weights file, which diffusers cannot guess in offline mode
        weight = next((f.name for f in sorted(path.glob("*.safetensors"))), None)
    with _warnings("diffusers", "peft") as warned:
        try:
            pipeline.load_lora_weights(str(folder), weight_name=weight, adapter_name=name)
        except (ValueError, RuntimeError, KeyError) as e:
            raise _mismatch(lora, str(e)) from None
    loaded = {n for names in pipeline.get_list_adapters().values() for n in names}
    unmatched = [w for w in warned if "unexpected keys" in w]
    if name not in loaded or unmatched:
        raise _mismatch(lora, unmatched[0] if unmatched else "none of its keys name a module")
    return name


def _mismatch(lora, why: str) -> InvalidRequest:
    lines = [line.strip() for line in why.splitlines() if line.strip()] or [why]
    detail = next((line for line in lines if "mismatch" in line), lines[0])
    return InvalidRequest(f"The LoRA {lora} does not fit this model's UNet and text encoders "
                          f"(another architecture or base?): {detail[:300]}")


@contextmanager
def _warnings(*loggers: str):
    """The warning messages these libraries log inside the block."""
    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect(logging.WARNING)
    for name in loggers:
        logging.getLogger(name).addHandler(handler)
    try:
        yield messages
    finally:
        for name in loggers:
            logging.getLogger(name).removeHandler(handler)
