"""The Segmind-VegaRT tab: Segmind-Vega with the VegaRT LCM-LoRA fused, text-to-image and
image-to-image in 2-8 steps.

Its event functions repeat the other tabs' on purpose: each signature is its API (the parameter
names and order gradio_client and MCP clients see), so each tab writes its own."""

import gradio as gr

from pipelines import catalogue
from pipelines.engine import LocalEngine
from pipelines.requests import Text2Image
from ui.generation import IMAGE2IMAGE, TEXT2IMAGE, generation_tab
from ui.header import stand_in_banner
from ui.running import Runs, image_request, stream_request


def vega_tab(engine: LocalEngine, model_id: str) -> list[dict]:
    spec = catalogue.get(model_id)
    if spec.stand_in:
        stand_in_banner(spec, "this tab", elem_id="vega-stand-in-banner")
    gr.Markdown(spec.description)
    with gr.Tab("Text-to-Image"):
        text = vega_text_to_image_tab(engine, model_id)
    with gr.Tab("Image-to-Image"):
        image = vega_image_to_image_tab(engine, model_id)
    return [text, image]


def vega_text_to_image_tab(engine: LocalEngine, model_id: str) -> dict:
    runs = Runs()

    def vega_text_to_image(prompt, negative_prompt, steps, guidance, width, height, seed,
                           randomize, variant, fast_decoder, images=1, http: gr.Request = None,
                           progress=gr.Progress()):
        """Generate an image from a text prompt with Segmind-VegaRT (1024² in 2-8 steps).
        Returns the PNG image, the seed used, Markdown with the time per stage, and all images of a
        batch.
        """
        request = Text2Image(prompt=prompt, negative_prompt=negative_prompt, model_id=model_id,
                             variant=variant, steps=steps, guidance=guidance, width=width,
                             height=height, seed=None if randomize else seed,
                             fast_decoder=fast_decoder, images=images)
        yield from stream_request(engine, request, runs, http.session_hash, progress)

    return generation_tab(engine, [model_id], TEXT2IMAGE, vega_text_to_image, runs,
                          stop_api="vega_stop")


def vega_image_to_image_tab(engine: LocalEngine, model_id: str) -> dict:
    runs = Runs()

    def vega_image_to_image(image, prompt, negative_prompt, strength, steps, guidance, size,
                            seed, randomize, variant, fast_decoder, images=1,
                            http: gr.Request = None,
                            progress=gr.Progress()):
        """Transform an image as a prompt says with Segmind-VegaRT (2-8 steps). Returns the PNG
        image, the seed used, Markdown with the time per stage, and all images of a batch.
        """
        request = image_request(image, prompt=prompt, negative_prompt=negative_prompt,
                                model_id=model_id, variant=variant, strength=strength,
                                steps=steps, guidance=guidance, width=size, height=size,
                                seed=None if randomize else seed, fast_decoder=fast_decoder,
                                images=images)
        yield from stream_request(engine, request, runs, http.session_hash, progress)

    return generation_tab(engine, [model_id], IMAGE2IMAGE, vega_image_to_image, runs,
                          stop_api="vega_stop_image_to_image")
