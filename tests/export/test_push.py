"""`python -m export push`: an exported folder and its model card go to the Hub, and what was
pushed serves as a pre-exported model. tests/hubfake.py stands in for the Hub."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from export import hub
from pipelines import catalogue, generate
from pipelines.errors import InvalidRequest
from pipelines.registry import Registry
from pipelines.requests import Text2Image, validate
from tests.hubfake import FakeHub

ROOT = Path(__file__).resolve().parents[2]
REPO = "me/tiny-int8-openvino"


@pytest.fixture
def fake(tmp_path):
    return FakeHub(tmp_path / "hub")


def test_push_uploads_the_folder_and_a_model_card(fake, models_dir):
    url = hub.push("tiny", "int8", REPO, models_dir, api=fake)
    assert url == f"https://hub.example/{REPO}"
    assert [call[0] for call in fake.calls] == ["create_repo", "upload_folder", "upload_file"]
    assert fake.calls[1][2] == models_dir / "tiny" / "int8"
    pushed = fake.root / REPO
    for part in ("model_index.json", "manifest.json", "unet/openvino_model.bin",
                 "tokenizer/openvino_tokenizer.xml"):
        assert (pushed / part).is_file()
    card = (pushed / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "openvino" and "openvino" in front["tags"]
    # Source and method come from the manifest.
    assert "**Method:** NNCF INT8" in card and "**Source:** tiny stand-in, quantized" in card
    assert "| unet |" in card and '"samples": 4' in card
    assert "--model tiny --variant int8" in card and f'from_pretrained("{REPO}")' in card


def test_what_was_pushed_serves_as_a_pre_exported_model(fake, models_dir, tmp_path, monkeypatch,
                                                        registry):
    hub.push("tiny", "int8", REPO, models_dir, api=fake)
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake.snapshot_download)
    monkeypatch.setitem(catalogue.MODELS, "tiny", dataclasses.replace(
        catalogue.MODELS["tiny"], hub_exports={"int8": REPO}))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    elsewhere = Registry(tmp_path / "models", hub_cache=tmp_path / "hf-cache")
    request = validate(Text2Image("a red fox", model_id="tiny", variant="int8", seed=5,
                                  width=256, height=256, fast_decoder=False))
    downloaded = generate.run(elsewhere.get("tiny", "int8"), request).image
    local = generate.run(registry.get("tiny", "int8"), request).image
    assert np.array_equal(np.asarray(downloaded), np.asarray(local))


def test_pushing_what_is_not_exported_says_how_to_export_it(fake, tmp_path):
    with pytest.raises(ValueError, match="python -m export tiny --variant int8"):
        hub.push("tiny", "int8", REPO, tmp_path, api=fake)
    assert fake.calls == []


def test_push_offline_fails_at_once_with_a_message(models_dir):
    done = subprocess.run([sys.executable, "-m", "export", "push", "tiny", "--repo", REPO],
                          cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1",
                                         "TURBO_MODELS_DIR": str(models_dir)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "HF_HUB_OFFLINE is set" in done.stderr and "Traceback" not in done.stderr


def test_push_takes_a_model_of_the_users_own(fake, models_dir, tmp_path):
    # `export add` made it: the models folder's catalogue names it, the built-in one does not.
    from export import tiny, user

    folder = tmp_path / "models"
    user.add("mine", str(tiny.save_source(tmp_path / "source")), folder)
    assert "mine" not in catalogue.MODELS
    url = hub.push("mine", "fp16", REPO, folder, api=fake)
    assert url == f"https://hub.example/{REPO}" and fake.calls[1][2] == folder / "mine" / "fp16"
    assert (fake.root / REPO / "unet" / "openvino_model.xml").is_file()
    card = (fake.root / REPO / "README.md").read_text()
    assert "python -m export add mine --from" in card and "base_model" not in card  # a path
    with pytest.raises(InvalidRequest, match="No model 'yours' in"):
        hub.push("yours", "fp16", REPO, folder, api=fake)
