"""Export: the tiny stand-in through optimum-intel, its manifest, the offline failure mode, and
the garbage collector frozen while an export runs."""

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import openvino as ov
import pytest
from transformers import CLIPTokenizer

from export.tiny import _WORDS

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("unet", "vae_decoder", "vae_encoder", "text_encoder", "text_encoder_2")


def test_tiny_export_has_the_optimum_intel_layout(models_dir):
    folder = models_dir / "tiny" / "fp16"
    for component in COMPONENTS:
        assert (folder / component / "openvino_model.xml").is_file()
        assert (folder / component / "openvino_model.bin").stat().st_size > 0
    for tokenizer in ("tokenizer", "tokenizer_2"):  # openvino.genai needs these
        assert (folder / tokenizer / "openvino_tokenizer.xml").is_file()
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "EulerAncestralDiscreteScheduler"
    assert scheduler["timestep_spacing"] == "trailing"


def test_unet_keeps_the_sdxl_conditioning_inputs(models_dir):
    unet = ov.Core().read_model(models_dir / "tiny" / "fp16" / "unet" / "openvino_model.xml")
    names = {port.get_any_name() for port in unet.inputs}
    assert {"sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"} <= names


def test_manifest_records_source_method_sizes_and_versions(models_dir):
    folder = models_dir / "tiny" / "fp16"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"] == "tiny" and manifest["variant"] == "fp16"
    assert "random weights" in manifest["source"] and "fp16" in manifest["method"]
    assert manifest["export_seconds"] > 0
    on_disk = sum(f.stat().st_size for f in (folder / "unet").rglob("*") if f.is_file())
    assert manifest["sizes_bytes"]["unet"] == on_disk
    assert manifest["versions"]["openvino"] == ov.__version__.split("-")[0]


def test_handwritten_tokenizer_reads_words_as_tokens(models_dir):
    tokenizer = CLIPTokenizer.from_pretrained(models_dir / "tiny" / "fp16" / "tokenizer")
    assert tokenizer.model_max_length == 77
    assert len(tokenizer("a cat in the forest", add_special_tokens=False).input_ids) == 5
    assert all(len(tokenizer(word, add_special_tokens=False).input_ids) == 1 for word in _WORDS)
    assert len(tokenizer("zebra 🦓", add_special_tokens=False).input_ids) > 2  # bytes, no <unk>


def export_cli(tmp_path, **env):
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "export", "sdxl-turbo", "--models-dir", str(tmp_path)],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("env, reason", [
    (dict(HF_HUB_OFFLINE="1"), "HF_HUB_OFFLINE is set"),
    # Nothing listens on port 9 of loopback: the Hub "endpoint" refuses at once.
    (dict(HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9"), "unreachable"),
])
def test_offline_export_fails_at_once_with_what_to_do(tmp_path, env, reason):
    done = export_cli(tmp_path, **env)
    assert done.returncode == 2
    assert reason in done.stderr and "stabilityai/sdxl-turbo" in done.stderr
    assert "copy an already exported OpenVINO folder" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "sdxl-turbo" / "fp16").exists()


@pytest.mark.parametrize("fails", [False, True])
def test_an_export_runs_with_the_garbage_collector_frozen_and_ends_unfrozen(tmp_path, fails):
    """Every export builds through export.model.staged_build, which freezes the objects alive
    before it so optimum-intel's gc.collect() calls skip them; a failed build must still
    unfreeze, or every later full collection of the process would skip them too."""
    import export.model

    seen = []

    def build(staged: Path) -> dict:
        seen.append(gc.get_freeze_count())
        if fails:
            raise RuntimeError("disk full")
        staged.mkdir()
        return dict(source="test", method="none")

    out = tmp_path / "tiny" / "fp16"
    if fails:
        with pytest.raises(RuntimeError, match="disk full"):
            export.model.staged_build(out, "tiny", "fp16", build)
    else:
        export.model.staged_build(out, "tiny", "fp16", build)
    assert seen[0] > 0
    assert gc.get_freeze_count() == 0
    assert out.exists() is not fails  # a failed build leaves no folder the registry would serve
    assert (out / "manifest.json").exists() is not fails


def test_an_export_leaves_objects_frozen_before_it_frozen():
    """A nested export (optimum's inside export.model.staged_build) or a host process that froze
    its own objects: the export neither freezes again nor unfreezes what it did not freeze."""
    from export.convert import gc_frozen

    gc.freeze()
    try:
        with gc_frozen(), gc_frozen():
            pass
        # Still frozen (the count itself drops as frozen objects are freed meanwhile).
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
