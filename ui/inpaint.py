"""The Inpaint tab: an image, a region painted on it and a prompt in; the image with only that
region repainted out.

Its event function repeats the other tabs' on purpose: its signature is its API (the parameter
names and order gradio_client and MCP clients see), so each tab writes its own."""

import gradio as gr

from pipelines.engine import LocalEngine
from ui.generation import INPAINT, generation_tab
from ui.running import Runs, inpaint_request, stream_request


def inpaint_tab(engine: LocalEngine, model_ids: list[str]) -> dict:
    runs = Runs()

    # Image-to-image's parameters in its order, so a client of one calls the other alike.
    # New parameters go at the end, so API calls made before they existed still work.
    def inpaint(image_and_mask, prompt, strength, steps, seed, randomize, variant,
                fast_decoder=None, model_id=model_ids[0], guidance=None, negative_prompt=None,
                size=None, images=1, http: gr.Request = None, progress=gr.Progress()):
        """Repaint the masked region of an image as a prompt says, on this machine's CPU; every
        pixel outside the mask stays the source's. Returns the PNG image, the seed used,
        Markdown with the time per stage and any warning, and all images of a batch.
        """
        request = inpaint_request(image_and_mask, prompt=prompt, model_id=model_id,
                                  variant=variant, strength=strength, steps=steps, width=size,
                                  height=size, seed=None if randomize else seed,
                                  fast_decoder=fast_decoder, guidance=guidance,
                                  negative_prompt=negative_prompt, images=images)
        yield from stream_request(engine, request, runs, http.session_hash, progress)

    return generation_tab(engine, model_ids, INPAINT, inpaint, runs, stop_api="stop_inpaint")
