"""The one builder of generation tabs: Text-to-Image, Image-to-Image, Inpaint and both halves of
the Segmind-VegaRT tab. It lays out every control the catalogue gives a model (size, strength,
guidance and negative prompt where the model uses them, steps, seed, variant, fast decoder),
keeps them in step with the model chosen, and wires the tab's event function.

A tab module writes that event function; its signature is the API: gradio names the endpoint's
parameters after it, and the builder feeds each parameter from the control of the same name,
in that order."""

import inspect
from collections.abc import Callable

import gradio as gr

from pipelines.catalogue import ModelSpec, Range
from pipelines.engine import LocalEngine
from pipelines.registry import Registry
from pipelines.requests import IMAGES
from ui import examples
from ui.results import result_outputs, show_batch
from ui.running import GENERATION, Runs, stop_button
from ui.widgets import (UploadImage, decoder_choice, decoder_state, guidance_slider, mask_editor,
                        model_choice, negative_prompt_box, range_slider, seed_controls,
                        slider_range, variant_choice, variant_state)

TEXT2IMAGE, IMAGE2IMAGE, INPAINT = "text2image", "image2image", "inpaint"
# The controls that follow the model chosen, in the order model_settings returns their updates.
FOLLOWS_MODEL = {
    TEXT2IMAGE: ("steps", "guidance", "negative_prompt", "width", "height", "variant",
                 "fast_decoder"),
    IMAGE2IMAGE: ("steps", "guidance", "negative_prompt", "strength", "size", "variant",
                  "fast_decoder"),
}
FOLLOWS_MODEL[INPAINT] = FOLLOWS_MODEL[IMAGE2IMAGE]
# Parameters of an event function that gradio fills in itself.
GRADIO_FILLS = ("http", "request", "progress")
# What each event parameter means, written once for every event function: document() adds them
# to its docstring as Args, which gradio shows on the API page and gives MCP clients.
PARAMETERS = {
    "enabled": "generate only when true (the page's Real-time switch).",
    "image": "the image to transform (center-cropped to the size).",
    "image_and_mask": "an image editor value, a dict: 'background' the image to change "
                      "(center-cropped to the size); 'layers' a list of mask images the "
                      "background's size, each opaque (where it has transparency) or else white "
                      "where the image should change, combined; 'composite' may be None.",
    "frame": "one live frame, a webcam's or any image (center-cropped to the size).",
    "prompt": "what the image should show, in English; the model reads 77 CLIP tokens.",
    "negative_prompt": "what the image should not show (applies at guidance above 1).",
    "strength": "how much to change, 0 to 1; int(steps × strength) denoising steps run.",
    "steps": "denoising steps, within the model's range (SDXL-Turbo: 1-4).",
    "guidance": "classifier-free guidance, for models that use it (SDXL-Turbo: 0).",
    "width": "in pixels, a multiple of 64 within the model's range.",
    "height": "in pixels, a multiple of 64 within the model's range.",
    "size": "width and height of the result in pixels (default: the model's).",
    "seed": "the seed to use when randomize is false, 0 to 4294967295.",
    "randomize": "pick a random seed (the one used is returned).",
    "variant": "fp16, int8 or int8-weights, as exported here.",
    "fast_decoder": "decode with the Tiny Autoencoder (TAESD) where it is exported.",
    "model_id": "the id of a model served here (the page's model choice).",
    "images": "how many images, 1 to 4; image i uses seed + i (all are returned).",
}


def steps_range(spec: ModelSpec, task: str) -> Range:
    return spec.steps if task == TEXT2IMAGE else spec.img2img_steps


def generation_tab(engine: LocalEngine, model_ids: list[str], task: str, event: Callable,
                   runs: Runs, stop_api: str, realtime: bool = False) -> dict:
    """Build the tab's controls and result column, wire `event` (its name is the API name) to
    the Generate button and Enter, and return the components by name (the event's parameter
    names, plus "outputs" and "button")."""
    registry = engine.registry
    controls = {}
    with gr.Row():
        with gr.Column():
            controls.update(_inputs(registry, model_ids, task))
            if realtime:
                controls["enabled"] = gr.Checkbox(
                    label="Real-time", value=False,
                    info="Generate as you type, with the seed above kept fixed; the newest "
                         "prompt replaces one still waiting")
            with gr.Row():
                controls["button"] = gr.Button("Generate", variant="primary")
                stop_button(runs, stop_api)
            _examples(task, controls)
        with gr.Column():
            controls["outputs"] = list(result_outputs())
    _follow_model(registry, task, controls)
    show_batch(controls["images"], controls["outputs"][-1])
    document(event)
    gr.on([controls["button"].click, controls["prompt"].submit], event,
          inputs=inputs_of(event, controls), outputs=controls["outputs"],
          api_name=event.__name__, concurrency_id=GENERATION, concurrency_limit=engine.slots)
    return controls


def _inputs(registry: Registry, model_ids: list[str], task: str) -> dict:
    """Every input control of a task, by the event parameter it feeds, in page order."""
    spec = registry.catalogue.get(model_ids[0])
    controls = {"model_id": model_choice(registry, model_ids)}
    if task == IMAGE2IMAGE:
        controls["image"] = UploadImage(label="Image (center-cropped to the size)",
                                        type="filepath", sources=["upload", "clipboard"],
                                        height=320)
    if task == INPAINT:
        controls["image_and_mask"] = mask_editor()
    controls["prompt"] = gr.Textbox(
        label="Prompt", lines=2, autofocus=task == TEXT2IMAGE,
        placeholder={TEXT2IMAGE: "Describe the image; Enter generates",
                     IMAGE2IMAGE: "What should it become?",
                     INPAINT: "What should the painted region become?"}[task])
    controls["negative_prompt"] = negative_prompt_box(spec)
    if task != TEXT2IMAGE:
        controls["strength"] = range_slider("Strength (how much to change)", spec.strength)
    controls["steps"] = range_slider("Steps", steps_range(spec, task))
    controls["guidance"] = guidance_slider(spec)
    if task == TEXT2IMAGE:
        with gr.Row():
            controls["width"] = range_slider("Width", spec.size)
            controls["height"] = range_slider("Height", spec.size)
    else:
        controls["size"] = range_slider("Size", spec.size, info="Width and height of the result")
    controls["seed"], controls["randomize"] = seed_controls()
    controls["images"] = range_slider("Images", IMAGES,
                                      info="Image i uses seed + i: each can be made again alone")
    controls["variant"] = variant_choice(registry, spec.id)
    controls["fast_decoder"] = decoder_choice(registry, spec.id)
    return controls


def _examples(task: str, controls: dict) -> None:
    if task == TEXT2IMAGE:
        gr.Examples(examples.PROMPTS, inputs=[controls["prompt"]])
    elif task == INPAINT:  # the image only: the region to change is the user's to paint
        gr.Examples([[{"background": str(examples.IMAGE), "layers": [], "composite": None},
                      examples.INPAINT_PROMPT]],
                    inputs=[controls["image_and_mask"], controls["prompt"]])
    else:
        gr.Examples([[str(examples.IMAGE), examples.IMAGE_PROMPT]],
                    inputs=[controls["image"], controls["prompt"]])


def _follow_model(registry: Registry, task: str, controls: dict) -> None:
    """Choosing a model sets ranges, defaults and what is shown from the catalogue; the guidance
    decides whether the negative prompt shows. queue=False: a full queue must not refuse them."""
    model = controls["model_id"]
    model.change(lambda m: model_settings(registry, m, task), inputs=model,
                 outputs=[controls[name] for name in FOLLOWS_MODEL[task]], queue=False,
                 api_visibility="private")
    controls["guidance"].change(lambda m, g: show_negative_prompt(registry, m, g),
                                inputs=[model, controls["guidance"]],
                                outputs=controls["negative_prompt"], queue=False,
                                api_visibility="private")


def parameters(event: Callable) -> list[str]:
    """The event's parameters that controls feed, in order."""
    return [name for name in inspect.signature(event).parameters if name not in GRADIO_FILLS]


def inputs_of(event: Callable, controls: dict) -> list:
    """The controls feeding `event`, in the order of its parameters."""
    return [controls[name] for name in parameters(event)]


def document(event: Callable) -> None:
    """Add an Args section for the event's parameters (from PARAMETERS) to its docstring."""
    args = "\n".join(f"    {name}: {PARAMETERS[name]}" for name in parameters(event))
    event.__doc__ = f"{inspect.cleandoc(event.__doc__)}\n\nArgs:\n{args}"


def model_settings(registry: Registry, model_id: str, task: str) -> list:
    """Updates for the controls that follow the model, in FOLLOWS_MODEL[task]'s order."""
    spec = registry.catalogue.get(model_id)
    size = gr.update(**slider_range(spec.size))
    updates = dict(
        steps=gr.update(**slider_range(steps_range(spec, task))),
        guidance=gr.update(**slider_range(spec.guidance), visible=spec.guidance.max > 0),
        negative_prompt=gr.update(visible=spec.guided(spec.guidance.default)),
        width=size, height=size, size=size,
        strength=gr.update(**slider_range(spec.strength)),
        variant=gr.update(**variant_state(registry, model_id)),
        fast_decoder=gr.update(**decoder_state(registry, model_id)),
    )
    return [updates[name] for name in FOLLOWS_MODEL[task]]


def show_negative_prompt(registry: Registry, model_id: str, guidance) -> dict:
    return gr.update(visible=registry.catalogue.get(model_id).guided(guidance))


def refresh_exported(registry: Registry, model_id: str, variant: str) -> tuple[dict, dict]:
    """The variant choice and fast decoder toggle as the models folder is now: what was
    exported since the page was built shows up without a restart."""
    return (gr.update(**variant_state(registry, model_id, variant)),
            gr.update(**decoder_state(registry, model_id)))
