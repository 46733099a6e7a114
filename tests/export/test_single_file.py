"""`python -m export add NAME --from FILE.safetensors --config FOLDER`: a single-file checkpoint in
the original (SGM) layout, written by tests/singlefile.py, read by diffusers' `from_single_file`.

What is proven, and what cannot be with the stand-in itself:
- The stand-in's SGM file goes back through diffusers' own converters (convert_ldm_unet_checkpoint,
  convert_ldm_vae_checkpoint, convert_ldm_clip_checkpoint, convert_open_clip_checkpoint) to the
  same state dicts, tensor for tensor: the helper's key rules are the converters' inverse.
- `from_single_file` itself cannot read the stand-in right: both its text encoders are 32 wide,
  and diffusers 0.39 (create_diffusers_clip_model_from_ldm) tells CLIP-L from OpenCLIP-G only by
  width: for text_encoder_2 it checks "CLIP-L key present and as wide as this encoder" first, so
  text_encoder_2 gets CLIP-L's weights and its text_projection is never loaded (left on the meta
  device). Real SDXL's encoders are 768 and 1280 wide; test_the_stand_in_is_ambiguous pins this.
- So the end-to-end test uses the stand-in with a 48-wide second text encoder (otherwise the
  same): added from its single file and from its diffusers folder, both serve the same image at
  the same seed through the registry and generate (bit for bit: the same weights are exported).
"""


import numpy as np
import pytest
import torch

from export import tiny, user
from export.__main__ import main as export_cli
from pipelines import generate
from pipelines.registry import Registry
from pipelines.requests import Text2Image, validate
from tests import singlefile


def _same(expected: dict, got: dict) -> None:
    assert set(got) == set(expected)
    assert [k for k in expected if not torch.equal(expected[k], got[k])] == []


def test_the_sgm_file_converts_back_to_the_same_weights(tmp_path):
    from diffusers.loaders import single_file_utils as convert
    from safetensors.torch import load_file

    pipeline = tiny.build_pipeline(tmp_path)
    checkpoint = load_file(singlefile.write(pipeline, tmp_path / "tiny.safetensors"))
    assert {k.split(".")[0] for k in checkpoint} == {"model", "first_stage_model", "conditioner"}
    _same(pipeline.unet.state_dict(),
          convert.convert_ldm_unet_checkpoint(checkpoint, dict(pipeline.unet.config)))
    _same(pipeline.vae.state_dict(),
          convert.convert_ldm_vae_checkpoint(checkpoint, dict(pipeline.vae.config)))
    _same(pipeline.text_encoder.state_dict(), convert.convert_ldm_clip_checkpoint(checkpoint))
    _same(pipeline.text_encoder_2.state_dict(), convert.convert_open_clip_checkpoint(
        pipeline.text_encoder_2, checkpoint, prefix=singlefile.OPEN_CLIP))


def test_the_stand_in_is_ambiguous_to_from_single_file(tmp_path):
    """Its UNet, VAE and CLIP-L come back exact; its OpenCLIP-G, as wide as CLIP-L, is read as
    CLIP-L (see the module docstring). If this starts failing, diffusers tells them apart
    otherwise and the stand-in itself can be round-tripped."""
    from diffusers import StableDiffusionXLPipeline

    source = tiny.save_source(tmp_path)
    pipeline = StableDiffusionXLPipeline.from_pretrained(source)
    read = StableDiffusionXLPipeline.from_single_file(
        str(singlefile.write(pipeline, tmp_path / "tiny.safetensors")), config=str(source),
        local_files_only=True)
    for part in ("unet", "vae", "text_encoder"):
        _same(getattr(pipeline, part).state_dict(), getattr(read, part).state_dict())
    second, clip_l = read.text_encoder_2.state_dict(), pipeline.text_encoder.state_dict()
    assert second["text_projection.weight"].is_meta
    assert all(torch.equal(clip_l[k], v) for k, v in second.items() if not v.is_meta)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """The 48-wide stand-in as a diffusers folder and as one SGM .safetensors file."""
    work = tmp_path_factory.mktemp("wide")
    pipeline = singlefile.wide_pipeline(work)
    pipeline.save_pretrained(work / "diffusers")
    return dict(folder=work / "diffusers",
                file=singlefile.write(pipeline, work / "my-finetune.safetensors"))


def image(registry: Registry, model_id: str) -> np.ndarray:
    request = validate(Text2Image("a red fox", model_id=model_id, seed=7, width=256, height=256,
                                  fast_decoder=False), registry.catalogue)
    return np.asarray(generate.run(registry.get(model_id, "fp16"), request).image)


def test_a_single_file_is_read_as_its_diffusers_folder(wide):
    """What `export add --from FILE --config FOLDER` exports: the folder's weights exactly."""
    from diffusers import StableDiffusionXLPipeline

    read = user._load(str(wide["file"]), "single-file", str(wide["folder"]))
    folder = StableDiffusionXLPipeline.from_pretrained(wide["folder"])
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        _same(getattr(folder, part).state_dict(), getattr(read, part).state_dict())


@pytest.mark.slow  # two exports of its own: python -m pytest -m slow
def test_a_single_file_serves_the_same_image_as_its_diffusers_folder(wide, tmp_path, capsys):
    models = tmp_path / "models"
    assert export_cli(["add", "my-single", "--from", str(wide["file"]), "--base", "sdxl-turbo",
                       "--config", str(wide["folder"]), "--models-dir", str(models)]) == 0
    assert "added my-single" in capsys.readouterr().out
    user.add("my-folder", str(wide["folder"]), models)
    registry = Registry(models, cache=False)
    single = image(registry, "my-single")
    assert single.std() > 0
    assert np.array_equal(single, image(registry, "my-folder"))
    manifest = (models / "my-single" / "fp16" / "manifest.json").read_text()
    assert '"source_kind": "single-file"' in manifest and "my-finetune.safetensors" in manifest
    assert f"--config {wide['folder']}" in registry.catalogue.get("my-single").add_command
