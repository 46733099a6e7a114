"""Fake copies of public pre-exported OpenVINO repos, file for file as tests/data/hub-layouts.json
lists them, with the tiny random-weight stand-ins' weights in them, plus the layout that
optimum-intel's own save_pretrained writes. For testing that the app's loader serves the layouts
people actually publish, not only our own export's.

The JSON is reconstructed from stored Hub pages; where it says NOT SEEN, or gives only sizes,
these guesses were made (each also marked where it is built):
- rupeshs/sdxl-turbo-openvino-int8: tokenizer_2/ holds the five slow-tokenizer files of its
  sister repo (hyper-sd-sdxl-1-step-openvino-int8); vae_decoder/ holds config.json +
  openvino_model.xml/.bin. Its `_name_or_path` is "stabilityai/sdxl-turbo". The tokenizer files
  are transformers-4 slow CLIPTokenizer saves; tokenizer_2 pads with <|endoftext|> like the
  stand-in's (the real SDXL tokenizer_2 pads with "!", which would change the ids).
- every repo: the weights come from one stand-in export, not the precision the real repo has
  where only the ids/images matter (the INT8 text encoders and FP32-sized VAE of rupeshs int8
  are the stand-in's INT8 text encoders and FP16 VAE).
- rupeshs/taesdxl-openvino: vae_decoder/ as the sibling rupeshs/taesd-ov has it (config.json +
  IR); both configs and the root config.json are one diffusers-0.2x AutoencoderTiny config
  without block_out_channels, shift_factor or upsample_fn (with the real channel sizes that
  config is exactly the old 588 B; the JSON's byte-count hint). README.md text invented.
- rupeshs/sdxl-turbo-openvino: model_index.json `_class_name` is not seen: StableDiffusionXLPipeline
  with the keys a diffusers save writes; input_ids i32 (text_encoder) / i64 (text_encoder_2) as
  its int8 sibling, not seen either; vae_decoder/ and vae_encoder/ = config.json + IR; vocab.json
  and merges.txt with CRLF line endings (the JSON infers a Windows upload from their sizes).
- OpenVINO/stable-diffusion-xl-base-1.0-int8-ov: model_index.json (the stand-in's, as optimum-cli
  writes it), README.md, scheduler/, text_encoder_2/, vae_encoder/ are not seen; tokenizer_2/
  holds the same eight files as tokenizer/; unet/.ipynb_checkpoints/ holds config-checkpoint.json
  (a copy of unet/config.json, what Jupyter writes there); every IR (VAE halves included: the
  real vae_decoder's 49.6 MB is INT8-sized) is nncf.compress_weights INT8_ASYM of the stand-in's
  FP16 IR. No .gitattributes is written since none is listed (the real repo surely has one).
- small files (.gitattributes, LICENSE.TXT, README.md, out_image.png) are short placeholders.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import openvino as ov

from export.tiny import write_tokenizer

LAYOUTS: dict = {repo: layout for repo, layout in json.loads(
    (Path(__file__).parent / "data" / "hub-layouts.json").read_text(encoding="utf-8")).items()
    if repo != "_about"}
OPTIMUM_SAVED = "local/optimum-save-pretrained"  # not a Hub repo: optimum's save_pretrained layout

TURBO_INT8 = "rupeshs/sdxl-turbo-openvino-int8"
TAESD = "rupeshs/taesdxl-openvino"
TURBO_FP32 = "rupeshs/sdxl-turbo-openvino"
BASE_INT8 = "OpenVINO/stable-diffusion-xl-base-1.0-int8-ov"

# repo -> (stand-in model id, variant) its weights come from, for comparing images.
SOURCES: dict[str, tuple[str, str]] = {
    TURBO_INT8: ("tiny", "int8"),
    TAESD: ("tiny-taesd", "fp16"),
    TURBO_FP32: ("tiny", "fp16"),
    BASE_INT8: ("tiny-base", "fp16"),  # then weight-compressed here: no such stand-in is built
    OPTIMUM_SAVED: ("tiny", "fp16"),
}
# Whether the layout computes exactly what its source export does (demand equal image bytes), or
# only something close (demand a valid image). rupeshs int8's i32 input_ids and optimum's
# re-save (unet timestep reshaped to [1], a shape constant now i64) change graphs, not numbers.
SAME_GRAPH: dict[str, bool] = {TURBO_INT8: True, TAESD: True, TURBO_FP32: False,
                               BASE_INT8: False, OPTIMUM_SAVED: True}

IR = ("config.json", "openvino_model.bin", "openvino_model.xml")
SLOW_TOKENIZER = ("added_tokens.json", "merges.txt", "special_tokens_map.json",
                  "tokenizer_config.json", "vocab.json")
OV_TOKENIZER = ("openvino_detokenizer.bin", "openvino_detokenizer.xml",
                "openvino_tokenizer.bin", "openvino_tokenizer.xml")
PARTS = ("text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder")

# What each NOT SEEN folder of the JSON is taken to hold (the guesses above).
NOT_SEEN: dict[str, dict[str, tuple[str, ...]]] = {
    TURBO_INT8: {"tokenizer_2/": SLOW_TOKENIZER, "vae_decoder/": IR},
    TAESD: {"vae_decoder/": IR},
    TURBO_FP32: {"vae_decoder/": IR, "vae_encoder/": IR},
    BASE_INT8: {"text_encoder_2/": IR, "vae_encoder/": IR,
                "tokenizer_2/": ("merges.txt", "special_tokens_map.json",
                                 "tokenizer_config.json", "vocab.json", *OV_TOKENIZER),
                "unet/.ipynb_checkpoints/": ("config-checkpoint.json",)},
}


def listed_files(repo: str) -> set[str]:
    """The repo's file paths: the JSON's, with its folder entries expanded as NOT_SEEN says."""
    files = set()
    for path in LAYOUTS[repo]["files"]:
        if path.endswith("/"):
            files.update(path + name for name in NOT_SEEN[repo][path])
        else:
            files.add(path)
    return files


def source_folder(stand_ins: Path, repo: str) -> Path:
    """Where the repo's source export is in a models folder (autoencoders sit at <id>/ for FP16,
    as pipelines/registry.py lays them out)."""
    model, variant = SOURCES[repo]
    folder = Path(stand_ins) / model / variant
    return folder if folder.is_dir() else Path(stand_ins) / model


def build_repo(repo: str, stand_ins: Path, out: Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    BUILDERS[repo](source_folder(stand_ins, repo), out)
    return out


def build_all(stand_ins: Path, root: Path) -> dict[str, Path]:
    """Every layout under root/<owner>/<name>/."""
    return {repo: build_repo(repo, stand_ins, Path(root) / repo) for repo in BUILDERS}


# --- the repos ------------------------------------------------------------------------------

def _turbo_int8(source: Path, out: Path) -> None:
    _placeholders(out, TURBO_INT8)
    _write_json(out / "model_index.json", _index(source, "StableDiffusionXLImg2ImgPipeline"))
    _copy(source / "scheduler" / "scheduler_config.json", out / "scheduler")
    for part in PARTS:
        # GenAI users hit "Tensor i64 not representable as pointer to i32": text_encoder takes
        # i32 ids, text_encoder_2 i64.
        _part(source / part, out / part, _i32_ids if part == "text_encoder" else None)
    for tokenizer in ("tokenizer", "tokenizer_2"):
        _slow_tokenizer(out / tokenizer, added_tokens=True)


def _taesd(source: Path, out: Path) -> None:
    _placeholders(out, TAESD)
    config = _old_taesd_config(json.loads((source / "vae_decoder" / "config.json").read_text()))
    _write_json(out / "config.json", config)
    for half in ("vae_decoder", "vae_encoder"):
        _part(source / half, out / half)
        _write_json(out / half / "config.json", config)


def _turbo_fp32(source: Path, out: Path) -> None:
    _placeholders(out, TURBO_FP32)
    _write_json(out / "model_index.json", _index(source, "StableDiffusionXLPipeline"))  # guess
    _copy(source / "scheduler" / "scheduler_config.json", out / "scheduler")
    for part in PARTS:
        _part(source / part, out / part,
              (lambda m: _i32_ids(_fp32(m))) if part == "text_encoder" else _fp32)
    for tokenizer in ("tokenizer", "tokenizer_2"):
        _slow_tokenizer(out / tokenizer, added_tokens=False, crlf=True)


def _base_int8(source: Path, out: Path) -> None:
    import nncf

    _placeholders(out, BASE_INT8)
    _copy(source / "model_index.json", out)  # diffusers-style, as optimum-cli writes it
    _copy(source / "scheduler" / "scheduler_config.json", out / "scheduler")
    def compress(model):
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)

    for part in PARTS:
        _part(source / part, out / part, compress)
    shutil.copyfile(out / "unet" / "config.json",
                    _mkdir(out / "unet" / ".ipynb_checkpoints") / "config-checkpoint.json")
    for tokenizer in ("tokenizer", "tokenizer_2"):
        _slow_tokenizer(out / tokenizer, added_tokens=False)
        for name in OV_TOKENIZER:
            _copy(source / tokenizer / name, out / tokenizer)


def _optimum_saved(source: Path, out: Path) -> None:
    """What optimum-intel's save_pretrained writes (checked with optimum-intel 2.2.0): each IR
    re-saved (the UNet's timestep reshaped to [1] by the pipeline's dynamic reshape), part
    configs copied, tokenizers re-saved by transformers (tokenizer.json + tokenizer_config.json:
    the openvino_tokenizer/detokenizer files are dropped), no manifest.json. Its
    model_index.json is NOT an OV-style index (OVStableDiffusionXLPipeline, OVModel* parts,
    vae_decoder/vae_encoder keys): _save_config copies the loaded folder's model_index.json
    verbatim (StableDiffusionXLPipeline, diffusers classes, one "vae" key); only a pipeline with
    no such file beside it would write its own config, and that one has "vae": OVModelVae.
    That one is what this layout holds (optimum's own save_config, checked: _class_name
    OVStableDiffusionXLPipeline, OVModelTextEncoder / OVModelUnet / OVModelVae parts), since the
    copied one is our own export's index and would test nothing."""
    from optimum.intel import OVStableDiffusionXLPipeline

    pipeline = OVStableDiffusionXLPipeline.from_pretrained(str(source), compile=False)
    pipeline.save_pretrained(out)
    pipeline.save_config(out)  # optimum's own model_index.json in place of the copied one


BUILDERS = {TURBO_INT8: _turbo_int8, TAESD: _taesd, TURBO_FP32: _turbo_fp32,
            BASE_INT8: _base_int8, OPTIMUM_SAVED: _optimum_saved}


# --- parts ----------------------------------------------------------------------------------

def _part(source: Path, out: Path, change=None) -> None:
    """config.json and the IR of one component; `change` (model -> model) rewrites the IR."""
    _copy(source / "config.json", out)
    if change is None:
        _copy(source / "openvino_model.xml", out)
        _copy(source / "openvino_model.bin", out)
        return
    model = change(ov.Core().read_model(source / "openvino_model.xml"))
    # compress_to_fp16=False: keep the precision `change` made (save_model defaults to FP16).
    ov.save_model(model, out / "openvino_model.xml", compress_to_fp16=False)


def _i32_ids(model: ov.Model) -> ov.Model:
    """input_ids taken as i32 (a Convert to the graph's i64 in front): same outputs."""
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input("input_ids").tensor().set_element_type(ov.Type.i32)
    return ppp.build()


def _fp32(model: ov.Model) -> ov.Model:
    """FP32 weights, as an FP32 export has them: each FP16 constant and the Convert that
    decompresses it become one f32 constant with the same values (f16 -> f32 is exact)."""
    from openvino import opset13

    for const in model.get_ops():
        if const.get_type_name() != "Constant" or const.get_output_element_type(0) != ov.Type.f16:
            continue
        wide = opset13.constant(const.get_data().astype(np.float32))
        wide.set_friendly_name(const.get_friendly_name())
        for target in list(const.output(0).get_target_inputs()):
            convert = target.get_node()
            assert convert.get_type_name() == "Convert", convert  # FP16 IRs decompress so
            convert.output(0).replace(wide.output(0))
    model.validate_nodes_and_infer_types()
    return model


def _index(source: Path, class_name: str) -> dict:
    """The stand-in's diffusers-style model_index.json under another pipeline class; the
    stand-in's `_name_or_path` is a temporary folder, a Hub repo names its source model."""
    index = json.loads((source / "model_index.json").read_text())
    return {**index, "_class_name": class_name, "_name_or_path": "stabilityai/sdxl-turbo"}


def _old_taesd_config(config: dict) -> dict:
    """An AutoencoderTiny config as diffusers 0.2x wrote it: no block_out_channels (GenAI then
    falls back to block_out_channels {64}: latents at full image size, the trap to test),
    shift_factor or upsample_fn; the stand-in's sizes."""
    keys = ("act_fn", "decoder_block_out_channels", "encoder_block_out_channels",
            "force_upcast", "in_channels", "latent_channels", "latent_magnitude", "latent_shift",
            "num_decoder_blocks", "num_encoder_blocks", "out_channels", "scaling_factor",
            "upsampling_scaling_factor")
    return {"_class_name": "AutoencoderTiny", "_diffusers_version": "0.24.0",
            "_name_or_path": "madebyollin/taesdxl", **{key: config[key] for key in keys}}


def _slow_tokenizer(folder: Path, added_tokens: bool, crlf: bool = False) -> None:
    """vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json (and
    added_tokens.json) as transformers 4 saved a slow CLIPTokenizer, with the stand-ins'
    hand-made vocabulary and special tokens, so the ids are the stand-in's."""
    write_tokenizer(folder)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    # One entry a line, as transformers writes it (write_tokenizer's is one line): the Hub's
    # CRLF sizes count a byte per line.
    (folder / "vocab.json").write_text(
        json.dumps(vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    def token(content: str) -> dict:
        return {"content": content, "lstrip": False, "normalized": True, "rstrip": False,
                "single_word": False}

    _write_json(folder / "special_tokens_map.json", {
        "bos_token": token(bos), "eos_token": token(eos), "pad_token": eos,
        "unk_token": token(eos)})
    _write_json(folder / "tokenizer_config.json", {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(vocab[t]): {**token(t), "special": True} for t in (bos, eos)},
        "bos_token": bos, "clean_up_tokenization_spaces": True, "do_lower_case": True,
        "eos_token": eos, "errors": "replace", "model_max_length": 77, "pad_token": eos,
        "tokenizer_class": "CLIPTokenizer", "unk_token": eos})
    if added_tokens:
        _write_json(folder / "added_tokens.json", {eos: vocab[eos], bos: vocab[bos]})
    if crlf:
        for name in ("vocab.json", "merges.txt"):
            path = folder / name
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))


# --- small files ----------------------------------------------------------------------------

def _placeholders(out: Path, repo: str) -> None:
    """The repo's small non-model files that are listed: short stand-ins for them."""
    files = LAYOUTS[repo]["files"]
    if ".gitattributes" in files:
        # rupeshs int8 shows every file as LFS: extra patterns were added.
        extra = ("*.json", "*.xml", "*.TXT") if repo == TURBO_INT8 else ()
        (out / ".gitattributes").write_text("".join(
            f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
            for pattern in ("*.bin", "*.onnx", "*.pt", "*.safetensors", "*.png", *extra)))
    if "LICENSE.TXT" in files:
        (out / "LICENSE.TXT").write_text("Stability AI Non-Commercial Research Community License "
                                         "Agreement (placeholder for the real 7.3 kB text)\n")
    if "README.md" in files:
        (out / "README.md").write_text(_card(repo), encoding="utf-8")
    if "out_image.png" in files:
        from PIL import Image

        Image.new("RGB", (8, 8), (200, 120, 40)).save(out / "out_image.png")


def _card(repo: str) -> str:
    """The card's markdown where the JSON holds it (the blame-page copy keeps the front matter
    that card parsers read); else a guessed card with the license the pages show."""
    for key, text in LAYOUTS[repo].get("contents", {}).items():
        if key.startswith("README.md") and text.startswith("---"):
            return text
    license_ = {TAESD: "mit", BASE_INT8: "openrail++"}[repo]
    return f"---\nlicense: {license_}\ntags:\n- openvino\n---\n\nOpenVINO IR (placeholder card).\n"


def _write_json(path: Path, data: dict) -> None:
    # As diffusers and transformers write their configs.
    _mkdir(path.parent)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _copy(file: Path, folder: Path) -> None:
    shutil.copyfile(file, _mkdir(folder) / file.name)


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
