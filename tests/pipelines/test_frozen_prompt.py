"""A prompt's text encodings kept for the requests that repeat it (pipelines.frozen_prompt), on
the tiny stand-in: the kept encodings give the same image bytes as the real text encoders, they
really replace them, and they never serve another prompt or a guided request."""

import os

import numpy as np
import openvino_genai as genai

from pipelines import frozen_prompt, generate
from pipelines.requests import validate
from tests.pipelines.test_generate import i2i, t2i


def pixels(result) -> np.ndarray:
    return np.asarray(result.image)


def test_kept_encodings_give_the_images_the_text_encoders_give(loaded):
    for make in (t2i, i2i):
        for seed in (1, 2):  # the second run reuses what the first kept
            kept = generate.run(loaded, validate(make(seed=seed, reuse_prompt=True)))
            alone = generate.run(loaded, validate(make(seed=seed)))
            assert np.array_equal(pixels(kept), pixels(alone))


def test_the_kept_encodings_replace_the_text_encoders(loaded):
    # A pipeline on "a red fox"'s kept encodings, asked for another prompt, still draws the
    # fox: the real encoders no longer run.
    parts = loaded.parts
    parts.freeze("a red fox in the snow")
    kept = parts.pipeline("text2image", False, "a red fox in the snow")
    real = parts.pipeline("text2image", False)

    def draw(pipeline, prompt: str) -> np.ndarray:
        # A copy: genai returns its decoder's output buffer, which the next run overwrites.
        return np.array(pipeline.generate(prompt, generator=genai.CppStdGenerator(3), width=256,
                                          height=256, num_inference_steps=1,
                                          guidance_scale=0.0).data)

    asked_for_a_house = draw(kept, "a blue house")
    assert np.array_equal(asked_for_a_house, draw(real, "a red fox in the snow"))
    assert not np.array_equal(asked_for_a_house, draw(real, "a blue house"))


def test_a_new_prompt_is_kept_beside_the_last_one(loaded):
    generate.run(loaded, validate(t2i(prompt="a lighthouse", reuse_prompt=True)))
    switched = generate.run(loaded, validate(t2i(prompt="a tiger", reuse_prompt=True)))
    alone = generate.run(loaded, validate(t2i(prompt="a tiger")))
    assert np.array_equal(pixels(switched), pixels(alone))
    assert "a lighthouse" in loaded.parts.kept and "a tiger" in loaded.parts.kept


def test_a_guided_request_runs_the_text_encoders_with_its_negative_prompt(registry):
    base = registry.get("tiny-base", "fp16")  # classifier-free guidance, negative prompts
    request = {"prompt": "a castle", "model_id": "tiny-base", "seed": 5, "steps": 20,
               "guidance": 5.0, "width": 512, "height": 512}
    first = generate.run(base, validate(t2i(**request, negative_prompt="fog",
                                            reuse_prompt=True)))
    other = generate.run(base, validate(t2i(**request, negative_prompt="rain",
                                            reuse_prompt=True)))
    alone = generate.run(base, validate(t2i(**request, negative_prompt="rain")))
    assert np.array_equal(pixels(other), pixels(alone))
    assert not np.array_equal(pixels(first), pixels(other))


def test_a_prompt_asked_again_runs_on_kept_encodings_from_the_third_time(loaded):
    # A re-roll: the same prompt, another seed, one image at a time.
    def run(prompt: str, seed: int):
        return generate.run(loaded, validate(t2i(prompt=prompt, seed=seed)))

    first = run("a quiet pond", 3)  # the real encoders; nothing kept for a prompt seen once
    assert "a quiet pond" not in loaded.parts.kept
    run("a quiet pond", 1)  # asked again: kept now
    assert "a quiet pond" in loaded.parts.kept
    third = run("a quiet pond", 3)
    assert np.array_equal(pixels(third), pixels(first))  # the same bytes, the encoders unrun
    assert third.timings.get("text encoders", 0.0) < first.timings["text encoders"]
    # Another prompt in between runs its own encoders, and the kept one is still used after.
    other = run("a red barn", 3)
    assert "text encoders" in other.timings and "a red barn" not in loaded.parts.kept
    assert not np.array_equal(pixels(other), pixels(first))
    assert np.array_equal(pixels(run("a quiet pond", 3)), pixels(first))


def test_a_batch_encodes_its_prompt_once(loaded):
    batch = generate.run_all(loaded, validate(t2i(prompt="a harbour at dawn", seed=9,
                                                  images=3)))
    # The first image ran the real encoders; the others only tokenized for the kept ones.
    first, *others = [result.timings.get("text encoders", 0.0) for result in batch]
    assert all(seconds < first for seconds in others)


def test_two_sessions_taking_turns_each_keep_their_prompt(loaded, monkeypatch):
    # Two real-time sessions on one model, their frames alternating: each prompt is frozen
    # once, on its second frame, and never again, whatever the other session asks between.
    freezes = []
    freeze_both = frozen_prompt.freeze_both
    monkeypatch.setattr(frozen_prompt, "freeze_both",
                        lambda *a: freezes.append(a[-1]) or freeze_both(*a))
    prompts = ("a yellow kite over the dunes", "a green tram in the rain")
    frames = [generate.run(loaded, validate(t2i(prompt=prompt, seed=4)))
              for _ in range(4) for prompt in prompts]
    assert freezes == list(prompts)
    alone = generate.run(loaded, validate(t2i(prompt=prompts[1], seed=4)))
    assert np.array_equal(pixels(frames[-1]), pixels(alone))  # the kept one, the same bytes


def test_more_prompts_than_are_kept_taking_turns_run_the_encoders(loaded, monkeypatch):
    # A crowd of prompts in turn: the oldest are evicted, so none counts as seen again and
    # none is frozen (which would cost more than encoding it); what is kept stays bounded.
    freezes = []
    freeze_both = frozen_prompt.freeze_both
    monkeypatch.setattr(frozen_prompt, "freeze_both",
                        lambda *a: freezes.append(a[-1]) or freeze_both(*a))
    size = loaded.parts.kept.size
    prompts = [f"a lantern number {n}" for n in range(size + 1)]
    for _ in range(3):
        for prompt in prompts:
            generate.run(loaded, validate(t2i(prompt=prompt, seed=4)))
    assert freezes == []
    for prompt in prompts:  # asked to be kept (a Live stream's frames): the last `size` stay
        generate.run(loaded, validate(t2i(prompt=prompt, seed=4, reuse_prompt=True)))
    assert [p in loaded.parts.kept for p in prompts] == [False] + [True] * size


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_prompts_kept_past_the_bound_leave_no_threads_behind(loaded):
    # Each kept prompt holds two compiled encoders, and OpenVINO starts threads for each
    # compiled model, which it keeps for the next one once that model is freed. So a model
    # freezing prompt after prompt (a crowd of Live streams) reaches a level of threads once
    # its kept prompts are full and stays there: the evicted ones must really be freed.
    parts = loaded.parts
    size = parts.kept.size
    for n in range(size):
        parts.freeze(f"a paper boat number {n}")
    full = threads()
    for n in range(size, 6 * size):  # five times the bound more, each evicting the oldest
        parts.freeze(f"a paper boat number {n}")
    assert len([n for n in range(6 * size) if f"a paper boat number {n}" in parts.kept]) == size
    # Were the evicted ones kept alive, each would hold about four threads more: 80 here.
    assert threads() - full < 8
