"""Typed generation requests and results, validated up front with concise messages (the role of
diffusers' check_inputs) so that bad input never reaches OpenVINO."""

import math
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from pipelines import catalogue
from pipelines.catalogue import ModelSpec, Range
from pipelines.errors import InvalidRequest

MAX_PROMPT_CHARS = 1000
MAX_SEED = 2**32 - 1
MAX_UPLOAD_PIXELS = 40_000_000  # checked from the header, before any pixel is decoded
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
IMAGES = Range(1, 4, 1)  # images per request: a batch, image i made with seed + i


@dataclass(frozen=True)
class Text2Image:
    prompt: str
    model_id: str = catalogue.DEFAULT_MODEL
    variant: str = "fp16"
    steps: int | None = None  # None: the model's default
    width: int | None = None
    height: int | None = None
    seed: int | None = None  # None: a random seed, returned in the result
    guidance: float | None = None
    fast_decoder: bool | None = None  # TAESD; None: the catalogue's default where exported
    # What the image should not show; used only where classifier-free guidance runs
    # (ModelSpec.guided), so validation drops it otherwise.
    negative_prompt: str | None = None
    images: int = 1  # a batch: image i uses seed + i, so each is made again alone by its seed
    # The same prompt comes again next (a batch's images, a Live stream's frames): keep its
    # text encodings rather than run the text encoders again. The image is the same either way.
    reuse_prompt: bool = False
    notes: tuple[str, ...] = ()  # what validation changed, for the user


@dataclass(frozen=True)
class Image2Image(Text2Image):
    image: Image.Image | None = None
    strength: float | None = None


@dataclass(frozen=True)
class Inpaint(Image2Image):
    """Image-to-image inside a mask: white (255) where the image should change, black where it
    is kept; validation fits it to the image's crop and makes it strictly black and white."""
    mask: Image.Image | None = None


@dataclass
class Result:
    image: Image.Image
    seed: int
    timings: dict[str, float]  # seconds per stage, and "total"
    decoder: str = "full VAE"  # or the Tiny Autoencoder's name
    warnings: list[str] = field(default_factory=list)
    served_by: str = ""  # the Ray Serve replica that made it; "" in this process


def validate(request: Text2Image, models: catalogue.Catalogue = catalogue.BUILT_IN) -> Text2Image:
    """Check a request against the catalogue (a registry's, to include the user's models) and
    fill in defaults. Raises InvalidRequest."""
    try:
        spec = models.get(request.model_id)
    except KeyError as e:
        raise InvalidRequest(e.args[0]) from None
    if request.variant not in spec.variants:
        raise InvalidRequest(f"{spec.name} has no variant {request.variant!r}; "
                             f"choose one of {', '.join(spec.variants)}.")
    prompt = _check_prompt(request.prompt)
    is_img2img = isinstance(request, Image2Image)
    steps_range = spec.img2img_steps if is_img2img else spec.steps
    guidance = _in_range("Guidance", request.guidance, spec.guidance)
    checked = replace(
        request,
        prompt=prompt,
        negative_prompt=_check_negative_prompt(request.negative_prompt, spec.guided(guidance)),
        steps=int(_in_range("Steps", request.steps, steps_range, integer=True)),
        width=_check_size("Width", request.width, spec),
        height=_check_size("Height", request.height, spec),
        seed=_check_seed(request.seed),
        guidance=guidance,
        images=int(_in_range("Images", request.images, IMAGES, integer=True)),
    )
    return _check_img2img(checked, spec) if is_img2img else checked


def _check_prompt(prompt, name: str = "prompt") -> str:
    if not isinstance(prompt, str):
        raise InvalidRequest(f"The {name} must be text.")
    # Control characters (other than line breaks and tabs) are noise from pasting; drop them.
    prompt = "".join(ch for ch in prompt if ch in "\n\t" or ch.isprintable()).strip()
    if not prompt and name == "prompt":
        raise InvalidRequest("Please enter a prompt: describe the image you want.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"The {name} is {len(prompt)} characters long; the limit is "
                             f"{MAX_PROMPT_CHARS} (the model reads only the first 77 tokens "
                             "anyway).")
    return prompt


def _check_negative_prompt(negative_prompt, guided: bool) -> str | None:
    """Checked like the prompt; None when empty or unguided, where it is ignored (the UI hides
    the box there, so a leftover text is not an error)."""
    if negative_prompt is None:
        return None
    negative_prompt = _check_prompt(negative_prompt, "negative prompt")
    return negative_prompt if negative_prompt and guided else None


def _number(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} must be a number, not {value!r}.") from None
    if not math.isfinite(number):
        raise InvalidRequest(f"{name} must be a finite number, not {value!r}.")
    return number


def _in_range(name: str, value, allowed: Range, integer: bool = False) -> float:
    if value is None:
        return allowed.default
    number = _number(name, value)
    if integer and number != int(number):
        raise InvalidRequest(f"{name} must be a whole number, not {value!r}.")
    if not allowed.min <= number <= allowed.max:
        lo, hi = (int(allowed.min), int(allowed.max)) if integer else (allowed.min, allowed.max)
        raise InvalidRequest(f"{name} must be between {lo} and {hi}, not {value!r}.")
    return number


def _check_size(name: str, value, spec: ModelSpec) -> int:
    pixels = int(_in_range(name, value, spec.size, integer=True))
    if pixels % spec.size.step:
        raise InvalidRequest(f"{name} must be a multiple of {int(spec.size.step)} pixels "
                             f"(the model works on 8×8 latent patches), not {pixels}.")
    return pixels


def seeds(request: Text2Image) -> list[int]:
    """The seed of each image of a (validated) request: seed, seed + 1, ..., wrapping past
    MAX_SEED to 0."""
    return [(request.seed + i) % (MAX_SEED + 1) for i in range(request.images)]


def single(request: Text2Image, seed: int) -> Text2Image:
    """One image of a batch, as a request of its own: what makes that image again alone."""
    return replace(request, seed=seed, images=1,
                   reuse_prompt=request.reuse_prompt or request.images > 1)


def _check_seed(seed) -> int:
    if seed is None or seed == "":
        return secrets.randbelow(MAX_SEED + 1)
    number = _number("Seed", seed)
    if number != int(number) or not 0 <= number <= MAX_SEED:
        raise InvalidRequest(f"Seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}.")
    return int(number)


def _check_img2img(request: Image2Image, spec: ModelSpec) -> Image2Image:
    if request.image is None:
        raise InvalidRequest("Please upload an image to transform.")
    strength = _in_range("Strength", request.strength, spec.strength)
    steps, notes = request.steps, list(request.notes)
    # Image-to-image runs int(steps × strength) denoising steps; below 1 nothing would run.
    # Raising the nominal steps keeps the cost at one step (SDXL-Turbo model card).
    while int(steps * strength) < 1:
        steps += 1
    if steps != request.steps:
        notes.append(f"Steps raised from {request.steps} to {steps}: image-to-image runs "
                     f"int(steps × strength) = int({steps} × {strength:g}) = "
                     f"{int(steps * strength)} denoising step(s), and needs at least one.")
    image = fit_image(request.image, request.width, request.height)
    checked = replace(request, strength=strength, steps=steps, image=image, notes=tuple(notes))
    return _check_mask(checked, request.image) if isinstance(request, Inpaint) else checked


def _check_mask(request: Inpaint, source: Image.Image) -> Inpaint:
    """The mask against the image as uploaded (before the crop), then cropped like it."""
    if request.mask is None:
        raise InvalidRequest("Please paint the region to change: there is no mask.")
    if request.mask.size != source.size:
        raise InvalidRequest(f"The mask is {_pixels(request.mask)} pixels and the image "
                             f"{_pixels(source)}: they must be the same size.")
    mask = fit_mask(request.mask, request.width, request.height)
    low, high = mask.getextrema()
    if high == 0:
        cropped = " inside the center crop" if _binarised(request.mask).getbbox() else ""
        raise InvalidRequest(f"The mask covers nothing{cropped}: paint the region to change "
                             f"(white or opaque where the image should change).")
    if low == 255:
        raise InvalidRequest("The mask covers the whole image: leave unpainted what should stay "
                             "(or use Image-to-Image to change all of it).")
    return replace(request, mask=mask)


def _pixels(image: Image.Image) -> str:
    return f"{image.width}×{image.height}"


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Resize to the model's size keeping the aspect ratio, by center crop."""
    return ImageOps.fit(image.convert("RGB"), (width, height), Image.Resampling.LANCZOS)


def fit_mask(mask: Image.Image, width: int, height: int) -> Image.Image:
    """Cropped and resized as fit_image crops the image, then thresholded at half as diffusers'
    mask processor does, so that the pixels kept (0) are exactly those the overlay restores."""
    return _binarised(ImageOps.fit(mask.convert("L"), (width, height), Image.Resampling.LANCZOS))


def _binarised(mask: Image.Image) -> Image.Image:
    return mask.convert("L").point(lambda v: 255 if v >= 128 else 0)


def load_image(path: str | Path) -> Image.Image:
    """Open an uploaded file as an RGB image, refusing non-images, corrupt files and images too
    large to decode safely (the size is read from the header first)."""
    return _load(path, _to_rgb)


def load_mask(path: str | Path) -> Image.Image:
    """Open a mask file (checked as load_image checks images) as an "L" mask: its alpha where it
    has transparency (a painted layer: opaque = change), else its brightness (white = change)."""
    return _load(path, _to_mask)


def _load(path: str | Path, convert) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise InvalidRequest("The uploaded image could not be found; please upload it again.")
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise InvalidRequest(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_UPLOAD_PIXELS:
                raise InvalidRequest(
                    f"The image is {width}×{height} pixels; the limit is "
                    f"{MAX_UPLOAD_PIXELS // 1_000_000} megapixels. Please downscale it.")
            image.seek(0)  # animated images: the first frame
            image.load()
            return convert(image)
    except InvalidRequest:
        raise
    except UnidentifiedImageError:
        raise InvalidRequest("That file is not an image PIL can read "
                             "(PNG, JPEG, WebP, ...).") from None
    except Image.DecompressionBombError:
        raise InvalidRequest("The image is too large to decode safely. "
                             "Please downscale it.") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InvalidRequest(f"The image file is damaged or truncated ({e}).") from None


def _to_mask(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:  # an opaque RGBA file is a black-and-white mask
            return alpha
    return _to_rgb(image).convert("L")


def frame_image(frame) -> Image.Image | None:
    """A live frame (a webcam's or a sketch's pixels as a numpy array, as gradio hands them
    over) as an RGB image; None for no frame. Refuses what is not an 8-bit picture with a
    message instead of an error deep in PIL or OpenVINO."""
    if frame is None:
        return None
    if isinstance(frame, Image.Image):
        return _to_rgb(frame)
    shape, dtype = getattr(frame, "shape", None), getattr(frame, "dtype", None)
    if shape is None or len(shape) not in (2, 3) or len(shape) == 3 and shape[2] not in (1, 3, 4):
        raise InvalidRequest(f"A frame must be an image (height × width × 1, 3 or 4 channels), "
                             f"not an array of shape {shape}.")
    if str(dtype) != "uint8":
        raise InvalidRequest(f"A frame must have 8-bit pixels, not {dtype}.")
    if shape[0] * shape[1] > MAX_UPLOAD_PIXELS or 0 in shape[:2]:
        raise InvalidRequest(f"A frame of {shape[1]}×{shape[0]} pixels cannot be used; the "
                             f"limit is {MAX_UPLOAD_PIXELS // 1_000_000} megapixels.")
    if len(shape) == 3 and shape[2] == 1:
        frame = frame[:, :, 0]
    return _to_rgb(Image.fromarray(frame))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (palette, RGBA, CMYK, 16-bit grey, ...) to 8-bit RGB, alpha composited on white."""
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I"):
        # Pillow's convert("RGB") clips 16-bit values instead of scaling them.
        image = image.convert("I").point(lambda v: v / 256).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
