"""The Text-to-Image tab: a prompt in, an image out, with real-time mode.

Its event function repeats the other tabs' on purpose: its signature is its API (the parameter
names and order gradio_client and MCP clients see), so each tab writes its own."""

import gradio as gr

from pipelines.engine import LocalEngine
from pipelines.requests import Text2Image
from ui import realtime
from ui.generation import TEXT2IMAGE, generation_tab
from ui.running import Runs, stream_request


def text_to_image_tab(engine: LocalEngine, model_ids: list[str]) -> dict:
    runs = Runs()

    # New parameters go at the end, so API calls made before they existed still work.
    def text_to_image(prompt, seed, randomize, steps, width, height, variant, fast_decoder=None,
                      model_id=model_ids[0], guidance=None, negative_prompt=None, images=1,
                      http: gr.Request = None, progress=gr.Progress()):
        """Generate an image from a text prompt on this machine's CPU (SDXL-Turbo on OpenVINO,
        or another served model). Returns the PNG image (its settings in PNG text chunks), the
        seed used, Markdown with the time per stage and any warning, and all images of a batch.
        """
        request = Text2Image(prompt=prompt, model_id=model_id, variant=variant,
                             seed=None if randomize else seed, steps=steps, width=width,
                             height=height, fast_decoder=fast_decoder, guidance=guidance,
                             negative_prompt=negative_prompt, images=images)
        yield from stream_request(engine, request, runs, http.session_hash, progress)

    controls = generation_tab(engine, model_ids, TEXT2IMAGE, text_to_image, runs,
                              stop_api="stop", realtime=True)
    realtime.wire(engine, controls)
    return controls
