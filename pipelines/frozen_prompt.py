"""A prompt's text encodings kept for the requests that repeat it (the images of a batch, the
frames of a Live stream), so that the text encoders run once rather than for every image.

openvino.genai takes no prompt embeddings: its pipelines run their two text encoders on every
call. So the encodings are frozen into text encoders of their own: models whose outputs are
constants, the real encoders' outputs for this prompt, and whose input (the token ids genai
fills in) is read by nothing. A pipeline built on them runs the shared UNet and decoder on
exactly the hidden states the real encoders give (the same image bytes), without their cost.
Written by hand: neither genai nor OpenVINO keeps encodings between calls.

Only without classifier-free guidance: the encoders then run on the prompt alone (genai
ignores the negative prompt), so one encoding serves every request with this prompt.

Several prompts are kept at once (Kept): sessions streaming different prompts to one model
take turns, and each must find its own still there."""

import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openvino as ov
import openvino_genai as genai

# The constant outputs are returned as they are, in f32 (a bf16 hint would round them).
CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


@dataclass
class FrozenPrompt:
    prompt: str
    encoders: tuple  # (CLIPTextModel, CLIPTextModelWithProjection), frozen
    pipelines: dict = field(default_factory=dict)  # built on these encoders, by task and decoder


ENCODERS = (("text_encoder", "tokenizer", genai.CLIPTextModel),
            ("text_encoder_2", "tokenizer_2", genai.CLIPTextModelWithProjection))


def tokenizers(folder: Path) -> tuple:
    """Each text encoder's genai Tokenizer and the id type the encoder takes: genai fills a
    frozen encoder's input with its tokenizer's ids, so the input must be of their type (a
    public repo's first encoder may take i32 ids, its second i64)."""
    core = ov.Core()
    return tuple((genai.Tokenizer(folder / tokenizer), core.read_model(
        folder / encoder / "openvino_model.xml").input("input_ids").get_element_type())
        for encoder, tokenizer, _ in ENCODERS)


def freeze(encoder, kind, config_path: Path, tokenizer: genai.Tokenizer, ids: ov.Type,
           prompt: str):
    """`encoder` (a compiled genai CLIPTextModel or CLIPTextModelWithProjection, of class
    `kind`) run on `prompt`, and a `kind` whose outputs are these outputs, whatever its input
    (of type `ids`, what `tokenizer` gives).

    genai reads output 0 (the pooled embedding) and num_hidden_layers + 1 (the penultimate
    hidden state) of an SDXL text encoder; all of those up to there are kept, in order."""
    config = kind.Config(config_path)
    encoder.infer(prompt, "", False)  # no guidance: the prompt alone, a batch of one
    outputs = [np.array(encoder.get_output_tensor(index).data, copy=True)
               for index in range(config.num_hidden_layers + 2)]
    input_ids = ov.opset13.parameter([-1, config.max_position_embeddings], ids,
                                     name="input_ids")
    model = ov.Model([ov.opset13.constant(output) for output in outputs], [input_ids],
                     "frozen-prompt")
    with tempfile.TemporaryDirectory(prefix="turbo-frozen-") as tmp:  # genai reads IR text
        xml = Path(tmp) / "openvino_model.xml"
        ov.save_model(model, xml, compress_to_fp16=False)
        weights = ov.Tensor(np.fromfile(xml.with_suffix(".bin"), dtype=np.uint8))
        # On the CPU whatever the model's device: they only hand over constants.
        return kind(xml.read_text(), weights, config, tokenizer, "CPU", **CONFIG)


def freeze_both(compiled: dict, folder: Path, tokenizers: tuple, prompt: str) -> FrozenPrompt:
    """Both text encoders of a model (CompiledParts.compiled, exported in `folder`) frozen on
    `prompt`. `tokenizers`: tokenizers(folder); genai calls them, nothing reads what they give."""
    return FrozenPrompt(prompt, tuple(
        freeze(compiled[encoder], kind, folder / encoder / "config.json", tokenizer, ids, prompt)
        for (encoder, _, kind), (tokenizer, ids) in zip(ENCODERS, tokenizers)))


class Kept:
    """The frozen prompts of one model, the `size` last used, and the `size` prompts seen
    last: a prompt is frozen when asked (a batch, a Live stream) or when it comes again (a
    re-roll, a real-time session's next frame). Bounded both ways, as each frozen prompt holds
    its encodings (tens of MB at full size): more prompts than that taking turns evict the
    oldest, and those not asked to be kept then run the encoders as if never seen. Not
    thread-safe: the model's lock guards it."""

    def __init__(self, size: int = 4):
        self.size = size
        self._frozen: OrderedDict[str, FrozenPrompt] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()

    def wanted(self, prompt: str, asked: bool) -> bool:
        """Whether a request for `prompt` should run on frozen encodings: where it asks to or
        where its prompt was seen lately. Call once per request."""
        again = prompt in self._seen or prompt in self._frozen
        _touch(self._seen, prompt, None, self.size)
        return asked or again

    def __contains__(self, prompt: str) -> bool:
        return prompt in self._frozen

    def get(self, prompt: str) -> FrozenPrompt:
        self._frozen.move_to_end(prompt)
        return self._frozen[prompt]

    def put(self, frozen: FrozenPrompt) -> None:
        _touch(self._frozen, frozen.prompt, frozen, self.size)

    def clear(self) -> None:
        """Forget the frozen prompts (their pipelines hold a UNet being replaced); the seen
        ones stay, so a stream goes on freezing its prompt."""
        self._frozen.clear()


def _touch(entries: OrderedDict, key: str, value, size: int) -> None:
    """Put key last (newest), dropping the oldest entries beyond size."""
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > size:
        entries.popitem(last=False)
