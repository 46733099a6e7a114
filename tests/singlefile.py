"""Test helper: the tiny stand-in's diffusers pipeline written as ONE .safetensors checkpoint in
the original (SGM) layout that diffusers' `from_single_file` reads, as fine-tunes are shared on
model sites:

    model.diffusion_model.*                  UNet
    first_stage_model.*                      VAE
    conditioner.embedders.0.transformer.*    CLIP-L text encoder (text_encoder)
    conditioner.embedders.1.model.*          OpenCLIP-G text encoder (text_encoder_2)

diffusers 0.39 ships only the SGM -> diffusers converters (loaders/single_file_utils.py:
convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint, convert_ldm_clip_checkpoint,
convert_open_clip_checkpoint). This inverts their key rules for exactly what the tiny model has
(two UNet levels of one layer each, a mid block, a four-level VAE, two text encoders) and
refuses any key it has no rule for, so it tests the app and is no general converter."""

from pathlib import Path

UNET, VAE = "model.diffusion_model.", "first_stage_model."
CLIP_L, OPEN_CLIP = "conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."

# convert_ldm_unet_checkpoint's DIFFUSERS_TO_LDM_MAPPING["unet"] (layers, addition_embed_type)
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
               "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
# update_unet_resnet_ldm_to_diffusers, read backwards
_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0",
                "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1",
                "conv_shortcut": "skip_connection"}
# DIFFUSERS_TO_LDM_MAPPING["vae"] and update_vae_attentions_ldm_to_diffusers, read backwards
_VAE_FIXED = {"encoder.conv_norm_out": "encoder.norm_out",
              "decoder.conv_norm_out": "decoder.norm_out"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v",
                  "to_out.0": "proj_out"}
# DIFFUSERS_TO_LDM_MAPPING["openclip"]["transformer"], read backwards
_OPEN_CLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc",
                    "mlp.fc2": "mlp.c_proj", "self_attn.out_proj": "attn.out_proj"}


def write(pipeline, path: Path) -> Path:
    """Write `pipeline` (a diffusers StableDiffusionXLPipeline of the tiny stand-in's geometry)
    as the single-file checkpoint `path`."""
    from safetensors.torch import save_file

    state = sgm_state_dict(pipeline)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def sgm_state_dict(pipeline) -> dict:
    return {**_prefixed(UNET, unet(pipeline.unet.state_dict(), pipeline.unet.config)),
            **_prefixed(VAE, vae(pipeline.vae.state_dict(), pipeline.vae.config)),
            **_prefixed(CLIP_L, dict(pipeline.text_encoder.state_dict())),
            **_prefixed(OPEN_CLIP, open_clip(pipeline.text_encoder_2.state_dict()))}


def _prefixed(prefix: str, state: dict) -> dict:
    return {prefix + key: value for key, value in state.items()}


def _split(key: str) -> tuple[str, str]:
    """'a.b.weight' -> ('a.b', 'weight')."""
    module, _, leaf = key.rpartition(".")
    return module, leaf


def unet(state: dict, config) -> dict:
    """convert_ldm_unet_checkpoint inverted: input_blocks.0 is conv_in, then per level
    `layers_per_block` blocks (.0 resnet, .1 attention) and a downsampler (.0.op) except on the
    last level; middle_block .0/.1/.2 = resnet, attention, resnet; output_blocks per level
    `layers_per_block + 1` blocks, the level's upsampler at .1 (.2 after an attention)."""
    per = config.layers_per_block
    levels = len(config.block_out_channels)
    out = {}
    for key, value in state.items():
        module, leaf = _split(key)
        parts = module.split(".")
        if module in _UNET_FIXED:
            new = _UNET_FIXED[module]
        elif parts[0] == "down_blocks":
            level, kind = int(parts[1]), parts[2]
            if kind == "downsamplers":  # down_blocks.L.downsamplers.0.conv
                assert level < levels - 1 and parts[3:] == ["0", "conv"], key
                new = f"input_blocks.{(level + 1) * (per + 1)}.0.op"
            else:
                block = 1 + level * (per + 1) + int(parts[3])
                new = _unet_layer(f"input_blocks.{block}", kind, parts[4:], key)
        elif parts[0] == "mid_block":  # an entry of middle_block is one layer, no sub-index
            index = {"resnets": 2 * int(parts[2]), "attentions": 1}[parts[1]]
            new = _unet_layer(f"middle_block.{index}", parts[1], parts[3:], key, nested=False)
        elif parts[0] == "up_blocks":
            level, kind = int(parts[1]), parts[2]
            if kind == "upsamplers":  # on the level's last block, after its attention if any
                block = level * (per + 1) + per
                has_attention = any(k.startswith(f"up_blocks.{level}.attentions.") for k in state)
                new = f"output_blocks.{block}.{2 if has_attention else 1}.conv"
                assert parts[3:] == ["0", "conv"], key
            else:
                block = level * (per + 1) + int(parts[3])
                new = _unet_layer(f"output_blocks.{block}", kind, parts[4:], key)
        else:
            raise KeyError(f"no SGM rule for UNet key {key}")
        out[f"{new}.{leaf}"] = value
    return out


def _unet_layer(block: str, kind: str, rest: list[str], key: str, nested: bool = True) -> str:
    """A resnet is the block's .0 with renamed layers; an attention its .1 with diffusers'
    own inner names (the converter only swaps the prefix)."""
    inner = ".".join(rest)
    if kind == "resnets":
        if inner not in _UNET_RESNET:
            raise KeyError(f"no SGM rule for UNet resnet key {key}")
        return f"{block}{'.0' if nested else ''}.{_UNET_RESNET[inner]}"
    if kind == "attentions":
        return f"{block}{'.1' if nested else ''}.{inner}"
    raise KeyError(f"no SGM rule for UNet key {key}")


def vae(state: dict, config) -> dict:
    """convert_ldm_vae_checkpoint inverted: encoder.down.L.block.J / .downsample.conv,
    decoder.up.(levels-1-L).block.J / .upsample.conv (the decoder counts levels backwards),
    mid.block_1/2 and mid.attn_1 (norm, q, k, v, proj_out as 1x1 convolutions)."""
    levels = len(config.up_block_types)
    out = {}
    for key, value in state.items():
        module, leaf = _split(key)
        parts = module.split(".")
        if module in _VAE_FIXED:
            new = _VAE_FIXED[module]
        elif module in ("encoder.conv_in", "encoder.conv_out", "decoder.conv_in",
                        "decoder.conv_out", "quant_conv", "post_quant_conv"):
            new = module
        elif parts[1] in ("down_blocks", "up_blocks"):
            coder, level = parts[0], int(parts[2])
            name = f"down.{level}" if coder == "encoder" else f"up.{levels - 1 - level}"
            if parts[3] == "resnets":
                layer = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
                new = f"{coder}.{name}.block.{parts[4]}.{layer}"
            elif parts[3] in ("downsamplers", "upsamplers") and parts[4:] == ["0", "conv"]:
                new = f"{coder}.{name}.{'downsample' if coder == 'encoder' else 'upsample'}.conv"
            else:
                raise KeyError(f"no SGM rule for VAE key {key}")
        elif parts[1] == "mid_block" and parts[2] == "resnets":
            layer = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
            new = f"{parts[0]}.mid.block_{int(parts[3]) + 1}.{layer}"
        elif parts[1] == "mid_block" and parts[2] == "attentions":
            new = f"{parts[0]}.mid.attn_1.{_VAE_ATTENTION['.'.join(parts[4:])]}"
            if leaf == "weight" and value.ndim == 2:  # the converter takes [:, :, 0, 0]
                value = value[:, :, None, None]
        else:
            raise KeyError(f"no SGM rule for VAE key {key}")
        out[f"{new}.{leaf}"] = value
    return out


def open_clip(state: dict) -> dict:
    """convert_open_clip_checkpoint inverted: q/k/v projections stacked into in_proj_weight and
    in_proj_bias (q, k, v rows in that order), text_projection transposed, embeddings and final
    norm under OpenCLIP's names, layers as transformer.resblocks.N."""
    import torch

    out, qkv = {}, {}
    fixed = {"text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.final_layer_norm.weight": "ln_final.weight",
             "text_model.final_layer_norm.bias": "ln_final.bias"}
    layers = "text_model.encoder.layers."
    for key, value in state.items():
        if key in fixed:
            out[fixed[key]] = value
        elif key == "text_projection.weight":
            out["text_projection"] = value.T
        elif key.startswith(layers):
            number, _, rest = key[len(layers):].partition(".")
            module, leaf = _split(rest)
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault((number, leaf), {})[module[-6]] = value
                continue
            if module not in _OPEN_CLIP_LAYER:
                raise KeyError(f"no SGM rule for OpenCLIP key {key}")
            out[f"transformer.resblocks.{number}.{_OPEN_CLIP_LAYER[module]}.{leaf}"] = value
        else:
            raise KeyError(f"no SGM rule for OpenCLIP key {key}")
    for (number, leaf), parts in qkv.items():
        out[f"transformer.resblocks.{number}.attn.in_proj_{leaf}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]])
    return out


def wide_pipeline(work: Path):
    """The tiny stand-in with a wider second text encoder (48 instead of 32; the UNet's
    cross-attention takes 32 + 48): with both encoders 32 wide, as in the stand-in itself,
    `from_single_file` cannot tell CLIP-L from OpenCLIP-G (see tests/export/test_single_file.py)
    and loads CLIP-L's weights into text_encoder_2. Real SDXL's are 768 and 1280 wide."""
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from export import tiny

    pipeline = tiny.build_pipeline(work)
    config = pipeline.text_encoder_2.config.to_dict()
    config.update(hidden_size=48, intermediate_size=96)
    with torch.random.fork_rng():
        torch.manual_seed(2)
        pipeline.text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**config))
        pipeline.unet = UNet2DConditionModel.from_config(
            {**pipeline.unet.config, "cross_attention_dim": 32 + 48})
    pipeline.register_modules(text_encoder_2=pipeline.text_encoder_2, unet=pipeline.unet)
    return pipeline
