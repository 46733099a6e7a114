"""The public pre-exported repos serve as the Hub lays them out (tests/data/hub-layouts.json,
file for file, with the tiny stand-ins' weights: tests/publichub.py): text-to-image,
image-to-image and inpainting end to end with their TAESD, torch-free, from a view beside the
Hugging Face cache that is never edited; the same seed gives the same bytes as our own export
where the graphs are the same."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from pipelines import catalogue, generate, hub_view
from pipelines.registry import Registry
from pipelines.requests import Image2Image, Inpaint, Text2Image, validate
from tests import publichub
from tests.hubfake import put_in_cache

TAESD_REPO = catalogue.AUTOENCODERS["taesdxl"].hub_export
PIPELINES = [repo for repo in publichub.SOURCES if repo != TAESD_REPO]


@pytest.fixture(scope="session")
def hub_cache(public_repos, tmp_path_factory):
    """A Hugging Face cache holding every public layout, as a Space's preload_from_hub leaves
    it (blobs and links)."""
    cache = tmp_path_factory.mktemp("hf-cache")
    for repo, folder in public_repos.items():
        put_in_cache(cache, repo, folder)
    return cache


def as_model(repo: str) -> str:
    """A catalogue entry serving `repo`, with the settings of the stand-in its weights are
    from, decoding with TAESD-XL (its public repo)."""
    return "public-" + hashlib.sha256(repo.encode()).hexdigest()[:8]


@pytest.fixture
def from_hub(hub_cache, tmp_path, monkeypatch):
    """A registry with an empty models folder, the public layouts in its Hugging Face cache,
    and a catalogue entry per layout."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for repo in PIPELINES:
        model_id, variant = publichub.SOURCES[repo]
        source = catalogue.MODELS[model_id]
        monkeypatch.setitem(catalogue.MODELS, as_model(repo), dataclasses.replace(
            source, id=as_model(repo), name=repo, stand_in=False, stands_in_for=None,
            hub_exports={variant: repo}, fast_decoder="taesdxl"))
    return Registry(tmp_path / "models", hub_cache=hub_cache)


def our_export(models_dir, tmp_path) -> Registry:
    """Our own export of the stand-ins, with only the FP16 TAESD (a public layout decodes with
    TAESD-XL's FP16 repo; ours would take the INT8 TAESD for an INT8 model)."""
    ours = tmp_path / "ours"
    ours.mkdir()
    for name in ("tiny", "tiny-base", "tiny-taesd"):
        (ours / name).symlink_to(models_dir / name)
    return Registry(ours, cache=False)


SOURCE = Image.effect_noise((256, 256), 64).convert("RGB")  # one source for both sides
MASK = Image.new("L", (256, 256), 0)
MASK.paste(255, (64, 64, 192, 192))  # (requests fit both to the request's size)


def requests(model_id: str, variant: str) -> list[Text2Image]:
    """The three tasks at the model's smallest size and fewest steps."""
    spec = catalogue.MODELS[model_id]
    side = max(256, int(spec.size.min))
    common = dict(prompt="a lighthouse at dusk", model_id=model_id, variant=variant, seed=11,
                  width=side, height=side, fast_decoder=True, steps=int(spec.steps.min))
    return [Text2Image(**common), Image2Image(**common, image=SOURCE, strength=0.6),
            Inpaint(**common, image=SOURCE, mask=MASK, strength=1.0)]


def pixels(loaded, request) -> np.ndarray:
    return np.asarray(generate.run(loaded, validate(request)).image)


@pytest.mark.parametrize("repo", PIPELINES)
def test_each_public_layout_generates_every_task_with_its_taesd(repo, from_hub, models_dir,
                                                               tmp_path):
    model_id, variant = publichub.SOURCES[repo]
    served = from_hub.get(as_model(repo), variant)
    assert served.folder.is_relative_to(from_hub.views_dir)  # a view, not the cache itself
    assert served.parts.autoencoder.is_relative_to(from_hub.views_dir)  # TAESD from its repo
    ours = our_export(models_dir, tmp_path).get(model_id, variant)  # same weights, by us
    for theirs, mine in zip(requests(as_model(repo), variant), requests(model_id, variant)):
        image = pixels(served, theirs)
        assert image.shape == (theirs.height, theirs.width, 3) and image.std() > 0
        if publichub.SAME_GRAPH[repo]:
            assert np.array_equal(image, pixels(ours, mine)), type(theirs).__name__


def test_the_hugging_face_cache_is_never_edited(from_hub, hub_cache):
    before = {p: p.lstat().st_mtime_ns for p in hub_cache.rglob("*")}
    for repo in PIPELINES:
        from_hub.fetch(as_model(repo), publichub.SOURCES[repo][1])
    assert {p: p.lstat().st_mtime_ns for p in hub_cache.rglob("*")} == before


def test_the_view_links_the_weights_and_says_what_it_adapted(from_hub):
    repo = "rupeshs/sdxl-turbo-openvino-int8"
    view = from_hub.fetch(as_model(repo), "int8")
    unet = view / "unet" / "openvino_model.bin"
    assert unet.is_symlink() and "snapshots" in str(unet.readlink())  # linked, not copied
    adapted = "\n".join(hub_view.manifest(view)["adapted"])
    assert "StableDiffusionXLImg2ImgPipeline" in adapted
    assert "tokenizer: OpenVINO tokenizer converted" in adapted and "i32 ids" in adapted
    assert "tokenizer_2: OpenVINO tokenizer converted" in adapted and "i64 ids" in adapted
    index = json.loads((view / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    assert from_hub.fetch(as_model(repo), "int8") == view  # made once


def test_the_taesd_view_gets_the_block_sizes_genai_needs(from_hub):
    spec = catalogue.get("sdxl-turbo")
    view = from_hub.autoencoder_for(spec, "int8")
    for half in ("vae_decoder", "vae_encoder"):
        config = json.loads((view / half / "config.json").read_text())
        assert len(config["block_out_channels"]) == 4  # a scale factor of 8
    assert any("block_out_channels added" in line for line in hub_view.manifest(view)["adapted"])


def test_optimum_save_pretrained_layout_is_normalised(from_hub, public_repos):
    repo = publichub.OPTIMUM_SAVED
    theirs = json.loads((public_repos[repo] / "model_index.json").read_text())
    assert theirs["_class_name"] == "OVStableDiffusionXLPipeline"
    assert theirs["vae"][1] == "OVModelVae" and theirs["unet"][1] == "OVModelUnet"
    index = json.loads((from_hub.fetch(as_model(repo), publichub.SOURCES[repo][1])
                        / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    assert index["vae"] == ["diffusers", "AutoencoderKL"] and "vae_decoder" not in index
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["text_encoder_2"] == ["transformers", "CLIPTextModelWithProjection"]


def test_labels_come_from_the_graph_not_the_name(from_hub):
    labels = {repo: from_hub.label(as_model(repo), publichub.SOURCES[repo][1])
              for repo in PIPELINES}
    assert labels["rupeshs/sdxl-turbo-openvino-int8"] == "int8"
    assert labels["rupeshs/sdxl-turbo-openvino"] == "fp32"
    assert labels["OpenVINO/stable-diffusion-xl-base-1.0-int8-ov"] == "int8-weights"
    assert labels[publichub.OPTIMUM_SAVED] == "fp16"


def test_the_catalogue_variant_of_each_public_repo_is_what_its_graph_says(from_hub):
    for spec in catalogue.MODELS.values():
        for variant, repo in spec.hub_exports.items():
            if repo in publichub.SOURCES and not spec.id.startswith("public-"):
                assert from_hub.label(spec.id, variant) == variant, repo


def test_the_space_serves_real_sdxl_turbo_and_sdxl_base(from_hub):
    assert from_hub.offered_variants("sdxl-turbo") == ["int8"]
    assert from_hub.offered_variants("sdxl-base") == ["int8-weights"]
    assert from_hub.has_autoencoder("taesdxl")
    image = pixels(from_hub.get("sdxl-turbo", "int8"), requests("sdxl-turbo", "int8")[0])
    assert image.shape == (256, 256, 3)


def test_a_folder_that_cannot_be_adapted_names_the_file(from_hub, public_repos, tmp_path,
                                                       monkeypatch):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(public_repos["rupeshs/sdxl-turbo-openvino-int8"], broken)
    (broken / "tokenizer" / "vocab.json").unlink()
    (broken / "tokenizer" / "merges.txt").unlink()
    with pytest.raises(hub_view.LayoutError, match=r"tokenizer/ in .*broken.*vocab.json"):
        hub_view.pipeline_view(broken, tmp_path / "views")
    index = json.loads((broken / "model_index.json").read_text())
    (broken / "model_index.json").write_text(json.dumps({**index, "_class_name": "FluxPipeline"}))
    with pytest.raises(hub_view.LayoutError, match="model_index.json.*'FluxPipeline'.*not an SDXL"):
        hub_view.pipeline_view(broken, tmp_path / "views")
    assert not any((tmp_path / "views").rglob("model_index.json"))  # no half-made view left
