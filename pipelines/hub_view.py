"""A servable view of a pre-exported OpenVINO folder laid out as the public Hub repos are.

The public optimum-intel exports differ from what openvino.genai reads: a model_index.json
naming StableDiffusionXLImg2ImgPipeline (or optimum-intel's own OVStableDiffusionXLPipeline
with OVModel* parts, as its save_config writes it), tokenizer folders with only the Hugging Face
tokenizer files and no OpenVINO tokenizer, text encoders that take i32 ids beside others that
take i64, and Tiny Autoencoder configs without block_out_channels (genai then sizes latents at
full image resolution). No library adapts these, so this module does, by hand:

A view is a folder of links to the snapshot's files, with only the adapted files written: the
OpenVINO tokenizers converted with each text encoder's id type, model_index.json and the decoder
configs normalised. It is made once, beside the models (never in the Hugging Face cache, which
is never edited), and its manifest (MANIFEST) says what it adapted. A folder that cannot be
adapted raises LayoutError, naming the file and what is wrong with it."""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from pipelines.errors import ModelNotAvailable
from pipelines.layout import VAE_HALVES

MANIFEST = "turbo-view.json"
VERSION = 1  # raise when the adaptations change: older views are made again
MODELS = ("text_encoder", "text_encoder_2", "unet", *VAE_HALVES)  # <part>/openvino_model.xml
TOKENIZERS = {"tokenizer": "text_encoder", "tokenizer_2": "text_encoder_2"}
# The files a part's folder may hold that a view links (an allow-list: repos carry strays,
# e.g. a unet/.ipynb_checkpoints/ folder).
PART_FILES = ("openvino_model.xml", "openvino_model.bin", "config.json")
SDXL_PIPELINES = {f"{prefix}StableDiffusionXL{task}Pipeline"
                  for prefix in ("", "OV") for task in ("", "Img2Img", "Inpaint")}
# model_index.json as openvino.genai reads an SDXL pipeline's (diffusers' names).
INDEX = {
    "_class_name": "StableDiffusionXLPipeline",
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


class LayoutError(ModelNotAvailable):
    """A pre-exported folder that cannot be served: the message names the file and what is
    wrong with it."""


def pipeline_view(snapshot: Path, views: Path) -> Path:
    """The servable view of a pre-exported SDXL pipeline folder (made now if it is missing or
    older than VERSION). views: the folder views are kept in."""
    return _view(Path(snapshot), Path(views), _adapt_pipeline)


def autoencoder_view(snapshot: Path, views: Path) -> Path:
    """The servable view of a pre-exported Tiny Autoencoder (vae_decoder/ + vae_encoder/)."""
    return _view(Path(snapshot), Path(views), _adapt_autoencoder)


def manifest(view: Path) -> dict:
    """What a view was made from and what it adapted; {} for a folder that is not a view."""
    try:
        return json.loads((Path(view) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def is_servable(folder: Path) -> bool:
    """Whether a folder is laid out as optimum-cli exports (and openvino.genai reads) already:
    the SDXL pipeline class and both OpenVINO tokenizers. Reads one small file."""
    folder = Path(folder)
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(index, dict) and index.get("_class_name") == INDEX["_class_name"]
            and all((folder / name / "openvino_tokenizer.xml").is_file() for name in TOKENIZERS)
            and all((folder / name / "tokenizer.json").is_file() for name in TOKENIZERS))


def is_pipeline(snapshot: Path) -> bool:
    """Whether a folder holds a pipeline (a model_index.json) at all."""
    return (Path(snapshot) / "model_index.json").is_file()


def _view(snapshot: Path, views: Path, adapt) -> Path:
    view = views / _name(snapshot)
    made = manifest(view)
    if made.get("version") == VERSION and made.get("source") == str(snapshot):
        return view
    view.parent.mkdir(parents=True, exist_ok=True)
    # Made aside and renamed into place: two loads at once never see half a view.
    work = Path(tempfile.mkdtemp(prefix=f".{view.name}-", dir=view.parent))
    work.chmod(0o755)
    try:
        adapted = adapt(snapshot, work)
        (work / MANIFEST).write_text(json.dumps(
            {"version": VERSION, "source": str(snapshot), "adapted": adapted}, indent=2),
            encoding="utf-8")
        if view.exists():
            shutil.rmtree(view)
        os.rename(work, view)
    except FileExistsError:  # another thread made it meanwhile: theirs serves
        pass
    except OSError as e:
        if not view.exists():
            raise ModelNotAvailable(f"Could not make a servable view of {snapshot} in "
                                    f"{views} ({e}).") from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return view


def _name(snapshot: Path) -> str:
    """<owner>--<name>/<commit> for a Hugging Face cache snapshot, else a hash of the path."""
    if snapshot.parent.name == "snapshots":
        return f"{snapshot.parent.parent.name.removeprefix('models--')}/{snapshot.name}"
    return f"local/{hashlib.sha256(str(snapshot.resolve()).encode()).hexdigest()[:16]}"


def _adapt_pipeline(snapshot: Path, view: Path) -> list[str]:
    adapted = _index(snapshot, view)
    for part in MODELS:
        _link_part(snapshot, view, part)
    adapted += _vae_configs(snapshot, view)
    scheduler = snapshot / "scheduler" / "scheduler_config.json"
    _require(scheduler, snapshot, "missing: the pipeline's scheduler config")
    _link(scheduler, view / "scheduler" / scheduler.name)
    for tokenizer, encoder in TOKENIZERS.items():
        adapted += _tokenizer(snapshot, view, tokenizer, encoder)
    return adapted


def _adapt_autoencoder(snapshot: Path, view: Path) -> list[str]:
    for half in VAE_HALVES:
        _link_part(snapshot, view, half)
    return _vae_configs(snapshot, view)


def _require(path: Path, snapshot: Path, problem: str) -> None:
    if not path.is_file():
        raise LayoutError(f"{path.relative_to(snapshot)} in {snapshot}: {problem}.")


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target.absolute())


def _link_part(snapshot: Path, view: Path, part: str) -> None:
    for name in ("openvino_model.xml", "openvino_model.bin"):
        _require(snapshot / part / name, snapshot, f"missing: the {part} part's OpenVINO model")
    for name in PART_FILES:
        if (snapshot / part / name).is_file():
            _link(snapshot / part / name, view / part / name)


def _read_json(path: Path, snapshot: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise LayoutError(f"{path.relative_to(snapshot)} in {snapshot}: not readable as JSON "
                          f"({e}).") from e
    if not isinstance(data, dict):
        raise LayoutError(f"{path.relative_to(snapshot)} in {snapshot}: not a JSON object.")
    return data


def _write_json(path: Path, data: dict) -> None:
    if path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def _index(snapshot: Path, view: Path) -> list[str]:
    """model_index.json with the class and component names openvino.genai reads."""
    path = snapshot / "model_index.json"
    _require(path, snapshot, "missing: the folder is not an exported pipeline")
    index = _read_json(path, snapshot)
    name = index.get("_class_name")
    if name not in SDXL_PIPELINES:
        raise LayoutError(f"model_index.json in {snapshot}: _class_name {name!r} is not an SDXL "
                          f"pipeline (one of {', '.join(sorted(SDXL_PIPELINES))}).")
    normalised = {**{k: v for k, v in index.items() if k not in ("vae_decoder", "vae_encoder")},
                  **INDEX}
    _write_json(view / "model_index.json", normalised)
    return [f"model_index.json: {key} {index.get(key)!r} → {value!r}"
            for key, value in normalised.items() if index.get(key) != value]


def _vae_configs(snapshot: Path, view: Path) -> list[str]:
    """Each VAE half's config with the keys openvino.genai sizes latents by: a Tiny
    Autoencoder's block_out_channels (diffusers ≥ 0.30 writes only encoder_ / decoder_ ones;
    without it genai takes a scale factor of 1) and its scaling factor (TAESD takes latents
    unscaled: 1.0)."""
    adapted = []
    for half in VAE_HALVES:
        path = snapshot / half / "config.json"
        _require(path, snapshot, "missing: the VAE's config, which sizes its latents")
        config = _read_json(path, snapshot)
        changes = {}
        if config.get("_class_name") == "AutoencoderTiny":
            blocks = config.get(f"{half.split('_')[1]}_block_out_channels")
            if "block_out_channels" not in config and blocks:
                changes["block_out_channels"] = blocks
            if "scaling_factor" not in config:
                changes["scaling_factor"] = 1.0
        if "block_out_channels" not in {**config, **changes}:
            raise LayoutError(f"{half}/config.json in {snapshot}: no block_out_channels (nor "
                              f"encoder_/decoder_block_out_channels), so the latent size is "
                              f"unknown.")
        if changes:
            _write_json(view / half / "config.json", {**config, **changes})
            adapted += [f"{half}/config.json: {key} added ({value!r})"
                        for key, value in changes.items()]
    return adapted


def _tokenizer(snapshot: Path, view: Path, name: str, encoder: str) -> list[str]:
    """The tokenizer folder, with an OpenVINO tokenizer (and detokenizer) that outputs the ids
    its text encoder takes, converted from the Hugging Face tokenizer files where the folder
    has none or one of another id type; a tokenizer.json too (token counts) where it lacks one."""
    import openvino as ov
    import openvino_tokenizers

    source = snapshot / name
    if not source.is_dir():
        raise LayoutError(f"{name}/ in {snapshot}: missing: the {encoder}'s tokenizer.")
    for file in source.iterdir():
        if file.is_file():
            _link(file, view / name / file.name)
    ids = ov.Core().read_model(snapshot / encoder / "openvino_model.xml").input(
        "input_ids").get_element_type()
    have = source / "openvino_tokenizer.xml"
    fits = (have.is_file() and (source / "openvino_detokenizer.xml").is_file()
            and ov.Core().read_model(have).output(0).get_element_type() == ids)
    if fits and (source / "tokenizer.json").is_file():
        return []
    hf = _hf_tokenizer(source, snapshot)
    adapted = []
    if not fits:
        models = openvino_tokenizers.convert_tokenizer(hf, with_detokenizer=True,
                                                       tokenizer_output_type=ids)
        for model, stem in zip(models, ("openvino_tokenizer", "openvino_detokenizer")):
            for suffix in (".xml", ".bin"):
                (view / name / f"{stem}{suffix}").unlink(missing_ok=True)
            ov.save_model(model, view / name / f"{stem}.xml")
        adapted.append(f"{name}: OpenVINO tokenizer converted from the Hugging Face tokenizer "
                       f"files, {ids.get_type_name()} ids as {encoder} takes")
    if not (source / "tokenizer.json").is_file():
        hf.backend_tokenizer.save(str(view / name / "tokenizer.json"))
        adapted.append(f"{name}: tokenizer.json written (prompt token counts)")
    return adapted


def _hf_tokenizer(source: Path, snapshot: Path):
    """The folder's CLIP tokenizer, from tokenizer.json or the slow vocab.json + merges.txt
    (transformers without torch: its tokenizers need none)."""
    from transformers import CLIPTokenizer

    files = {f.name for f in source.iterdir()}
    if "tokenizer.json" not in files and not {"vocab.json", "merges.txt"} <= files:
        raise LayoutError(f"{source.relative_to(snapshot)}/ in {snapshot}: no tokenizer files: "
                          f"it needs vocab.json + merges.txt, or tokenizer.json (it has "
                          f"{', '.join(sorted(files)) or 'none'}).")
    try:
        return CLIPTokenizer.from_pretrained(source)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise LayoutError(f"{source.relative_to(snapshot)}/ in {snapshot}: no readable CLIP "
                          f"tokenizer (vocab.json + merges.txt, or tokenizer.json): "
                          f"{type(e).__name__}: {e}") from e
