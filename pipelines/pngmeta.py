"""Generation settings carried inside the PNG, as PNG text chunks, so that any image can be made
again and other tools can read them: one chunk per setting, and a "parameters" chunk in the
format other diffusion UIs write (AUTOMATIC1111, Forge, ...).

The settings ride on the PIL image's `info`; gradio copies string `info` entries into the PNGs
it serves, and `save` writes them for the CLI."""

from pathlib import Path

from PIL import Image, PngImagePlugin

from pipelines import catalogue
from pipelines.requests import Image2Image, Result, Text2Image

SOFTWARE = "turbo-studio"


def settings(request: Text2Image, result: Result,
             models: catalogue.Catalogue = catalogue.BUILT_IN) -> dict[str, str]:
    """The settings of one generation (`request` as validated), as text."""
    spec = models.get(request.model_id)
    values = {
        "prompt": request.prompt,
        "seed": result.seed,
        "steps": request.steps,
        "width": request.width,
        "height": request.height,
        "guidance": request.guidance,
        "model": request.model_id,
        "variant": request.variant,
        "decoder": result.decoder,
    }
    extra = f", Model: {spec.name} ({request.variant}), Decoder: {result.decoder}"
    negative = ""
    if request.negative_prompt:  # only kept where guidance applies (requests.validate)
        values["negative_prompt"] = request.negative_prompt
        negative = f"\nNegative prompt: {request.negative_prompt}"
    if isinstance(request, Image2Image):
        values["strength"] = request.strength
        extra = f", Denoising strength: {request.strength:g}" + extra
    values = {key: f"{value:g}" if isinstance(value, float) else str(value)
              for key, value in values.items()}
    values["parameters"] = (f"{request.prompt}{negative}\nSteps: {request.steps}, CFG scale: "
                            f"{request.guidance:g}, Seed: {result.seed}, Size: "
                            f"{request.width}x{request.height}" + extra)
    values["software"] = SOFTWARE
    return values


def tag(result: Result, request: Text2Image,
        models: catalogue.Catalogue = catalogue.BUILT_IN) -> Image.Image:
    """Attach the settings to the result's image (its `info`) and return it."""
    result.image.info.update(settings(request, result, models))
    return result.image


def save(image: Image.Image, path: str | Path) -> Path:
    """Write a PNG holding the image's text settings as text chunks."""
    chunks = PngImagePlugin.PngInfo()
    for key, value in image.info.items():
        if isinstance(key, str) and isinstance(value, str):
            chunks.add_text(key, value)
    path = Path(path)
    image.save(path, format="PNG", pnginfo=chunks)
    return path


def read(path: str | Path) -> dict[str, str]:
    """The text chunks of a PNG."""
    with Image.open(path) as image:
        image.load()
        return dict(getattr(image, "text", {}))
