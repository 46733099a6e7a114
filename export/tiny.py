"""Tiny SDXL-architecture stand-in with random weights, built offline in seconds.

It keeps the real model's geometry where it matters (VAE downsamples by 8, UNet with the SDXL
text_time conditioning and attention only at low resolution, two CLIP text encoders whose hidden
states are concatenated and whose second one has a pooled projection), so sizes, shapes and code
paths behave as with SDXL-Turbo. Its images are noise.

The Vega-like stand-in has a smaller UNet (no mid block), as Segmind-Vega is a slimmed SDXL, and a
tiny LoRA made here with peft (on its attention and convolution layers, non-zero weights) stands
in for the LCM-LoRA Segmind-VegaRT that export fuses into it.
"""

import json
from collections import Counter
from pathlib import Path

# Words that become single tokens, so that ordinary prompts count about as many CLIP tokens as
# they would with the real vocabulary (a character-level vocabulary would hit 77 tokens at once).
_WORDS = """a an the of in on at with and or to by from for under over near above behind
photo photograph painting drawing portrait landscape close up view shot detailed high quality
cat dog fox bird horse owl lion tiger bear rabbit fish robot astronaut person woman man child
city street house castle forest mountain river lake sea ocean beach desert sky cloud clouds
sun moon star stars night day sunset sunrise morning evening rain snow fog storm light
red orange yellow green blue purple pink black white golden silver dark bright colorful
small big tiny huge old young ancient modern futuristic cute beautiful cinematic dramatic
style art oil watercolor pencil digital render anime cartoon realistic sharp focus
wearing sitting standing flying running reading holding looking garden room window table
flowers tree trees grass field lighting neon glass wood stone metal steampunk fantasy""".split()


def _byte_alphabet():
    """CLIP's reversible byte-to-unicode table (from the GPT-2/CLIP BPE): every byte gets a
    printable character, so any UTF-8 prompt tokenizes without unknown tokens."""
    visible = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD))
               + list(range(0xAE, 0x100)))
    chars, extra = [], 0
    for b in range(256):
        if b in visible:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _learn_merges(words: list[str]) -> list[tuple[str, str]]:
    """Classic BPE training (Sennrich et al.) on the word list until every word is one symbol.
    Applying the merges in this order re-creates each listed word as a single token."""
    corpus = [list(word[:-1]) + [word[-1] + "</w>"] for word in words]
    merges = []
    while True:
        pairs = Counter(pair for symbols in corpus for pair in zip(symbols, symbols[1:]))
        if not pairs:
            return merges
        best = max(sorted(pairs), key=pairs.get)  # most frequent; ties broken alphabetically
        merges.append(best)
        corpus = [_merge(symbols, best) for symbols in corpus]


def _merge(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    merged, i = [], 0
    while i < len(symbols):
        if tuple(symbols[i:i + 2]) == pair:
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


def write_tokenizer(folder: Path) -> None:
    """Write a CLIP BPE vocabulary by hand: every byte (alone and word-final), plus merges
    learned on _WORDS so that those words are single tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = _byte_alphabet()
    merges = _learn_merges(sorted(set(_WORDS)))
    tokens = alphabet + [c + "</w>" for c in alphabet] + [a + b for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def hand_tokenizer(folder: Path):
    """A CLIPTokenizer on the hand-written vocabulary (its ids fit any CLIP vocabulary size)."""
    from transformers import CLIPTokenizer

    write_tokenizer(folder)
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                         pad_token="<|endoftext|>", model_max_length=77)


def build_pipeline(work: Path, vega: bool = False):
    """Assemble a diffusers StableDiffusionXLPipeline with random weights (seeded: the same
    stand-in on every machine); `vega`: with the Vega-like UNet."""
    import torch

    tokenizer = hand_tokenizer(work / "tokenizer_files")
    text_config = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                       projection_dim=32, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    # Constructors take no generator: seed inside fork_rng so the caller's RNG state is untouched.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return _assemble(tokenizer, text_config, vega_unet() if vega else sdxl_unet())


def sdxl_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True,
        cross_attention_dim=64,  # text_encoder + text_encoder_2 hidden sizes
        addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=80,  # pooled (32) + 6 time ids x 8
    )


def vega_unet():
    """Fewer blocks than sdxl_unet (no mid block, narrower), same conditioning inputs."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=128, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8, mid_block_type=None,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, cross_attention_dim=64,
        addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=80,
    )


def _assemble(tokenizer, text_config, unet):
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(16, 32, 32, 32), norm_num_groups=8, sample_size=512,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.13025,
    )
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        timestep_spacing="trailing")
    return StableDiffusionXLPipeline(
        vae=vae, unet=unet, scheduler=scheduler,
        text_encoder=CLIPTextModel(CLIPTextConfig(**text_config)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**text_config)),
        tokenizer=tokenizer, tokenizer_2=tokenizer,
    )


def save_source(work: Path, vega: bool = False) -> Path:
    """Save the tiny diffusers pipeline as a local folder, the 'source model' that export reads."""
    source = work / "diffusers"
    build_pipeline(work, vega).save_pretrained(source)
    return source


def save_lora(work: Path, rank: int = 4, vega: bool = True, seed: int = 1) -> Path:
    """Make a LoRA for the Vega-like UNet (or, `vega` False, the tiny SDXL one) with peft, on its
    attention projections and resnet convolutions, with random non-zero weights (peft's default
    leaves B at zero, a no-op), and save it with save_lora_weights in peft's key names
    (lora_A/lora_B), which diffusers loads as they are.

    Not through convert_state_dict_to_diffusers, as diffusers' attention-only training scripts
    do: it renames only the attention keys (to_q.lora_A -> to_q.lora.down), not the
    convolutions', and diffusers judges the file's format by its first key (a convolution's,
    peft's), so the renamed attention weights were never loaded: only conv1/conv2 took effect
    (tests/export/test_lora_and_weights.py checks every targeted module changes)."""
    import torch
    from diffusers import StableDiffusionXLPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                        target_modules=["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = vega_unet() if vega else sdxl_unet()
        unet.add_adapter(config)
    layers = get_peft_model_state_dict(unet)
    folder = work / "lora"
    StableDiffusionXLPipeline.save_lora_weights(folder, unet_lora_layers=layers)
    return folder
