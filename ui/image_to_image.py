"""The Image-to-Image tab: an uploaded image and a prompt in, a transformed image out."""

import gradio as gr

from pipelines.registry import Registry
from ui.generation import IMAGE2IMAGE, generation_tab
from ui.running import Runs, image_request, stream_request


def image_to_image_tab(registry: Registry, model_ids: list[str]) -> dict:
    runs = Runs()

    # New parameters go at the end, so API calls made before they existed still work.
    def image_to_image(image, prompt, strength, steps, seed, randomize, variant,
                       fast_decoder=None, model_id=model_ids[0], guidance=None,
                       negative_prompt=None, size=None, http: gr.Request = None,
                       progress=gr.Progress()):
        """Transform an image as a prompt says, on this machine's CPU. Returns the PNG image,
        the seed used, and Markdown with the time per stage and any warning.

        Args:
            image: the image to transform (center-cropped to the size).
            prompt: what it should become.
            strength: how much to change, from 0 to 1; steps × strength steps run.
            steps: denoising steps, within the model's range.
            seed: the seed to use when randomize is false.
            randomize: pick a random seed (the one used is returned).
            variant: fp16, int8 or int8-weights, as exported here.
            fast_decoder: decode with the Tiny Autoencoder (TAESD) where it is exported.
            model_id: a catalogue model id served here.
            guidance: classifier-free guidance, for models that use it.
            negative_prompt: what the image should not show (applies at guidance above 1).
            size: width and height of the result in pixels (default: the model's).
        """
        request = image_request(image, prompt=prompt, model_id=model_id, variant=variant,
                                strength=strength, steps=steps, width=size, height=size,
                                seed=None if randomize else seed, fast_decoder=fast_decoder,
                                guidance=guidance, negative_prompt=negative_prompt)
        yield from stream_request(registry, request, runs, http.session_hash, progress)

    return generation_tab(registry, model_ids, IMAGE2IMAGE, image_to_image, runs,
                          stop_api="stop_image_to_image")
