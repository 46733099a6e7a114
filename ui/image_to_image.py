"""The Image-to-Image tab: an uploaded image and a prompt in, a transformed image out.

Its event function repeats the other tabs' on purpose: its signature is its API (the parameter
names and order gradio_client and MCP clients see), so each tab writes its own."""

import gradio as gr

from pipelines.engine import LocalEngine
from ui.generation import IMAGE2IMAGE, generation_tab
from ui.running import Runs, image_request, stream_request


def image_to_image_tab(engine: LocalEngine, model_ids: list[str]) -> dict:
    runs = Runs()

    # New parameters go at the end, so API calls made before they existed still work.
    def image_to_image(image, prompt, strength, steps, seed, randomize, variant,
                       fast_decoder=None, model_id=model_ids[0], guidance=None,
                       negative_prompt=None, size=None, images=1, http: gr.Request = None,
                       progress=gr.Progress()):
        """Transform an image as a prompt says, on this machine's CPU. Returns the PNG image,
        the seed used, Markdown with the time per stage and any warning, and all images of a
        batch.
        """
        request = image_request(image, prompt=prompt, model_id=model_id, variant=variant,
                                strength=strength, steps=steps, width=size, height=size,
                                seed=None if randomize else seed, fast_decoder=fast_decoder,
                                guidance=guidance, negative_prompt=negative_prompt,
                                images=images)
        yield from stream_request(engine, request, runs, http.session_hash, progress)

    return generation_tab(engine, model_ids, IMAGE2IMAGE, image_to_image, runs,
                          stop_api="stop_image_to_image")
