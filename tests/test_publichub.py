"""Self-check of tests/publichub.py: the fake public repos have the files
tests/data/hub-layouts.json lists, and the traits the notes report third parties hitting."""

import json

import openvino as ov
import pytest

from tests import publichub as hub


@pytest.fixture
def repos(public_repos):
    return public_repos  # tests/conftest.py: built once per session


def files(folder):
    return {f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file()}


def input_ids_type(folder, part):
    model = ov.Core().read_model(folder / part / "openvino_model.xml")
    return model.input("input_ids").get_element_type()


@pytest.mark.parametrize("repo", sorted(hub.LAYOUTS))
def test_each_repo_has_the_listed_files_only(repos, repo):
    assert files(repos[repo]) == hub.listed_files(repo)


def test_every_layout_and_source_is_declared(repos):
    assert set(repos) == {*hub.LAYOUTS, hub.OPTIMUM_SAVED}
    assert set(hub.SOURCES) == set(hub.SAME_GRAPH) == set(repos)


def test_rupeshs_int8_takes_i32_ids_in_the_first_encoder_and_i64_in_the_second(repos):
    assert input_ids_type(repos[hub.TURBO_INT8], "text_encoder") == ov.Type.i32
    assert input_ids_type(repos[hub.TURBO_INT8], "text_encoder_2") == ov.Type.i64


def test_rupeshs_int8_is_an_img2img_index(repos):
    index = json.loads((repos[hub.TURBO_INT8] / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLImg2ImgPipeline"
    assert index["vae"] == ["diffusers", "AutoencoderKL"]


@pytest.mark.parametrize("repo", [hub.TURBO_INT8, hub.TURBO_FP32])
def test_rupeshs_tokenizers_are_slow_files_only(repos, repo):
    for tokenizer in ("tokenizer", "tokenizer_2"):
        names = {f.name for f in (repos[repo] / tokenizer).iterdir()}
        assert {"vocab.json", "merges.txt"} <= names
        assert not names & {"openvino_tokenizer.xml", "tokenizer.json"}


def test_the_windows_upload_has_crlf_vocabularies(repos):
    assert b"\r\n" in (repos[hub.TURBO_FP32] / "tokenizer" / "merges.txt").read_bytes()


def test_the_fp32_repo_has_no_fp16_weights(repos):
    model = ov.Core().read_model(repos[hub.TURBO_FP32] / "unet" / "openvino_model.xml")
    assert not [op for op in model.get_ops() if op.get_type_name() == "Constant"
                and op.get_output_element_type(0) == ov.Type.f16]


def test_taesd_configs_lack_block_out_channels(repos):
    for config in ("config.json", "vae_decoder/config.json", "vae_encoder/config.json"):
        data = json.loads((repos[hub.TAESD] / config).read_text())
        assert "block_out_channels" not in data and data["scaling_factor"] == 1.0
        assert data["_class_name"] == "AutoencoderTiny" and "_name_or_path" in data


def test_the_openvino_repo_has_ov_tokenizers_and_a_stray_checkpoint_folder(repos):
    folder = repos[hub.BASE_INT8]
    assert (folder / "tokenizer_2" / "openvino_tokenizer.xml").is_file()
    assert (folder / "unet" / ".ipynb_checkpoints").is_dir()


def test_optimum_save_pretrained_drops_the_ov_tokenizers(repos):
    folder = repos[hub.OPTIMUM_SAVED]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "OVStableDiffusionXLPipeline"  # optimum's own save_config
    assert (folder / "tokenizer" / "tokenizer.json").is_file()
    assert not (folder / "tokenizer" / "openvino_tokenizer.xml").exists()
