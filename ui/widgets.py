"""Controls whose ranges, choices and visibility come from the catalogue, and the two gradio
components written by hand for that."""

from pathlib import Path

import gradio as gr
import gradio.utils

from pipelines import catalogue, hub_probe, ir_precision
from pipelines.catalogue import ModelSpec, Range
from pipelines.registry import Registry
from pipelines.requests import MAX_SEED


class UploadImage(gr.Image):
    """gr.Image that hands the uploaded file's path over unopened.

    Written by hand: gr.Image opens every upload with PIL before the event runs, so a non-image
    or a decompression bomb fails there with a bare "Error". requests.load_image reads the size
    from the header first and explains every refusal. is_template keeps gr.Image's front end."""

    is_template = True

    def preprocess(self, payload):
        if payload is None or payload.path is None:
            return super().preprocess(payload)  # none, or a data: URL gradio decodes itself
        return uploaded(payload.path)


class MaskEditor(gr.ImageEditor):
    """gr.ImageEditor whose uploaded files (an API client's background and mask layers) are
    handed over unopened, as UploadImage does and for the same reason: requests.load_image and
    load_mask explain every refusal. The page's own edits arrive as blobs; gr.ImageEditor saves
    those as files (type="filepath") first."""

    is_template = True

    def preprocess(self, payload):
        files = [payload.background, payload.composite, *payload.layers] if payload else []
        if payload is None or payload.id is not None or any(f and f.path is None for f in files):
            return super().preprocess(payload)
        path = lambda file: uploaded(file.path) if file is not None else None  # noqa: E731
        return {"background": path(payload.background),
                "layers": [path(layer) for layer in payload.layers if layer is not None],
                "composite": path(payload.composite)}


def uploaded(path: str) -> str:
    """`path` where it names a file gradio stored for this app (its upload folder, where
    uploads and examples go); anything else an API client sends as file data (a file of the
    server's) is refused. gradio checks this too, but passes its static files through, and
    these two components read the file themselves: written by hand so that only files of this
    app are ever read."""
    folder = Path(gradio.utils.get_upload_folder()).resolve()
    if not Path(path).resolve().is_relative_to(folder):
        raise gr.Error("Only files uploaded to this app are read: upload the image (API "
                       "clients: gradio_client's handle_file does).", title="Not an upload")
    return path


def mask_editor() -> MaskEditor:
    """The image to inpaint with one layer to paint the mask on, in white."""
    return MaskEditor(label="Image (paint the region to change; center-cropped to the size)",
                      type="filepath", sources=["upload", "clipboard"], height=420,
                      # PNG: lossless, so a layer's alpha (the mask) arrives as painted.
                      format="png", layers=False, transforms=(),
                      brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"))


class ModelSlider(gr.Slider):
    """gr.Slider whose range follows the model chosen, so gradio's own bounds check (made
    against the range the page started with, for API users) would refuse another model's
    values: requests.validate checks them against the model's own range instead, with a clear
    message. Written by hand: gradio has no option to skip its check."""

    is_template = True

    def preprocess(self, payload):
        return payload


class ModelRadio(gr.Radio):
    """gr.Radio whose choices follow the model chosen (its variants, those exported so far);
    requests.validate checks the value against the catalogue instead of gradio against the
    choices the page started with."""

    is_template = True

    def preprocess(self, payload):
        return payload


def model_choice(registry: Registry, model_ids: list[str]) -> gr.Radio:
    specs = [registry.catalogue.get(m) for m in model_ids]
    return gr.Radio([(spec.name, spec.id) for spec in specs], value=model_ids[0], label="Model",
                    visible=len(model_ids) > 1,
                    info=" · ".join(f"{spec.name}: {spec.description}" for spec in specs))


def slider_range(allowed: Range) -> dict:
    # A fixed setting (SDXL-Turbo's guidance 0) has min = max, which gr.Slider refuses; its
    # slider is hidden, and the value sent stays the default.
    return dict(minimum=allowed.min, maximum=max(allowed.max, allowed.min + allowed.step),
                value=allowed.default, step=allowed.step)


def range_slider(label: str, allowed: Range, **options) -> ModelSlider:
    return ModelSlider(label=label, **slider_range(allowed), **options)


def guidance_slider(spec: ModelSpec) -> ModelSlider:
    """Shown for models that take guidance (SDXL-Turbo runs without)."""
    return range_slider("Guidance", spec.guidance, visible=spec.guidance.max > 0,
                        info="How closely to follow the prompt; above 1 the negative prompt "
                             "applies too")


def negative_prompt_box(spec: ModelSpec) -> gr.Textbox:
    return gr.Textbox(label="Negative prompt", lines=1,
                      placeholder="What the image should not show",
                      visible=spec.guided(spec.guidance.default))


def seed_controls() -> tuple[gr.Number, gr.Checkbox]:
    with gr.Row():
        seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED)
        randomize = gr.Checkbox(label="Random seed", value=True)
    return seed, randomize


def variant_info(registry: Registry, model_id: str, variants: list[str]) -> str:
    """What each variant offered is: read from its UNet's graph where it is here (a repo's or a
    variant's name can say otherwise), else what the catalogue says it should be."""
    return " · ".join(f"{v}: {variant_label(registry, model_id, v)}" for v in variants)


def variant_label(registry: Registry, model_id: str, variant: str) -> str:
    if (size := registry.download_size(model_id, variant)) is not None:
        return f"{catalogue.VARIANTS[variant]}; downloads {hub_probe.gigabytes(size)} on first use"
    read = registry.label(model_id, variant)
    if read is None:
        return catalogue.VARIANTS[variant]
    return f"{ir_precision.describe(read)} (read from its UNet)"


def variant_choice(registry: Registry, model_id: str) -> ModelRadio:
    """FP16 / INT8 / INT8 weights, listing only the variants exported here (so far)."""
    return ModelRadio(**variant_state(registry, model_id), label="Variant")


def variant_state(registry: Registry, model_id: str, current: str | None = None) -> dict:
    """The variant choice's choices, value (the current one while it is still offered) and info."""
    variants = registry.offered_variants(model_id) or ["fp16"]
    value = current if current in variants else variants[0]
    return dict(choices=variants, value=value, info=variant_info(registry, model_id, variants))


def decoder_choice(registry: Registry, model_id: str) -> gr.Checkbox:
    return gr.Checkbox(**decoder_state(registry, model_id))


def decoder_state(registry: Registry, model_id: str) -> dict:
    """The fast decoder (TAESD) toggle: on by default where the catalogue says so and it is
    exported; where it is not, disabled, with the command that exports it."""
    spec = registry.catalogue.get(model_id)
    if spec.fast_decoder is None:
        return dict(value=False, visible=False)
    autoencoder = catalogue.AUTOENCODERS[spec.fast_decoder]
    exported = registry.has_autoencoder(autoencoder.id)
    info = (autoencoder.description if exported else
            f"Not exported: run `{catalogue.export_command(autoencoder.id)}`; it is offered "
            f"as soon as it is exported.")
    return dict(label=f"Fast decoder ({autoencoder.name})", info=info, visible=True,
                value=exported and spec.fast_decoder_default, interactive=exported)
