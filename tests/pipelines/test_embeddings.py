"""Cached text embeddings: a request whose prompt is unchanged skips both text encoders and makes
the image the encoders would have made."""

import numpy as np

from pipelines import generate
from pipelines.embeddings import PromptEmbeddings
from pipelines.requests import Image2Image, Text2Image, validate
from PIL import Image


def run(loaded, prompt, **fields):
    kind = Image2Image if "image" in fields else Text2Image
    return generate.run(loaded, validate(kind(prompt=prompt, model_id="tiny", **fields)))


def encoded(result) -> bool:
    """Whether the text encoders ran: the StageClock times every call to them."""
    return "text encoders" in result.timings


def test_an_unchanged_prompt_skips_the_text_encoders_with_the_same_image(loaded):
    prompt = "a windmill on a hill, cached"
    assert encoded(run(loaded, prompt, seed=1))
    # Steps, seed and size change, the prompt does not: what real-time mode sends.
    cached = run(loaded, prompt, seed=2, steps=2, width=384, height=256)
    assert not encoded(cached)
    loaded.embeddings.clear()
    uncached = run(loaded, prompt, seed=2, steps=2, width=384, height=256)
    assert encoded(uncached)
    assert np.array_equal(np.asarray(cached.image), np.asarray(uncached.image))
    assert encoded(run(loaded, prompt + " at night", seed=2))  # another prompt encodes again


def test_image_to_image_shares_the_cache(loaded):
    prompt = "a windmill in watercolor, cached"
    assert encoded(run(loaded, prompt, seed=1))
    result = run(loaded, prompt, seed=1, image=Image.new("RGB", (300, 300), "teal"))
    assert not encoded(result) and "VAE encoder" in result.timings


def test_the_least_recently_used_prompt_is_dropped(loaded):
    cache = PromptEmbeddings(size=2)
    pipeline = loaded.text2image
    with loaded.lock:
        first = cache.kwargs(pipeline, "one")
        cache.kwargs(pipeline, "two")
        assert cache.kwargs(pipeline, "one")["prompt_embeds"] is first["prompt_embeds"]
        cache.kwargs(pipeline, "three")  # drops "two", used longest ago
        assert cache.kwargs(pipeline, "one")["prompt_embeds"] is first["prompt_embeds"]
        assert len(cache._cache) == 2 and ("two", None, False) not in cache._cache
