"""Text embeddings of recent prompts, so that a request that changes only steps, seed or size (as
real-time mode sends while the user tweaks) skips both text encoders.

Written by hand: diffusers and optimum-intel encode the prompt on every call; their pipelines
accept the embeddings instead (prompt_embeds, pooled_prompt_embeds and the negative pair)."""

from collections import OrderedDict

SIZE = 8  # prompts kept per loaded model; SDXL's embeddings are ~0.6 MB each


class PromptEmbeddings:
    """A small LRU per loaded model, keyed by (prompt, negative prompt, guidance on or off).
    Used only under the model's lock, like the pipelines it encodes with."""

    def __init__(self, size: int = SIZE):
        self.size = size
        self._cache: OrderedDict[tuple, tuple] = OrderedDict()

    def kwargs(self, pipeline, prompt: str, negative_prompt: str | None = None,
               guided: bool = False) -> dict:
        """Pipeline keyword arguments that stand for prompt (and negative_prompt): the
        embeddings, computed by the pipeline's own encode_prompt on first use. guided: whether
        classifier-free guidance runs (ModelSpec.guided), which needs the negative pair."""
        key = (prompt, negative_prompt, guided)
        if key not in self._cache:
            self._cache[key] = pipeline.encode_prompt(
                prompt=prompt, device=pipeline.device, num_images_per_prompt=1,
                do_classifier_free_guidance=guided, negative_prompt=negative_prompt)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        embeds, negative_embeds, pooled, negative_pooled = self._cache[key]
        return dict(prompt_embeds=embeds, negative_prompt_embeds=negative_embeds,
                    pooled_prompt_embeds=pooled, negative_pooled_prompt_embeds=negative_pooled)

    def clear(self) -> None:
        self._cache.clear()
