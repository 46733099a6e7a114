"""Export of the new models: the LoRA fused into the Vega stand-in (recorded in its manifest),
INT8 weight compression for SDXL base, INT8 calibration at LCM's own steps, and the offline
failure of the real models."""

import json
import shutil

import numpy as np
import openvino as ov
import pytest

from export import export_model, quantize
from pipelines import catalogue
from pipelines.registry import Registry


def test_vega_manifest_records_the_fused_lora(models_dir):
    manifest = json.loads((models_dir / "tiny-vega" / "fp16" / "manifest.json").read_text())
    assert manifest["lora"] == catalogue.LOCAL_LORA
    assert "fuse_lora" in manifest["method"] and "peft" in manifest["source"]


def test_int8_calibration_runs_at_the_models_own_scheduler_and_steps(models_dir):
    spec = catalogue.get("tiny-vega")
    samples = quantize.collect_unet_inputs(models_dir / "tiny-vega" / "fp16", spec, ["a cat"],
                                           num_samples=4, size=256)
    assert len(samples) == 4  # one run of 4 steps at guidance 1: no doubled batch
    assert all(s["sample"].shape == (1, 4, 32, 32) for s in samples)
    Scheduler = __import__("diffusers").LCMScheduler
    lcm = Scheduler.from_pretrained(models_dir / "tiny-vega" / "fp16" / "scheduler")
    lcm.set_timesteps(4)
    assert [float(s["timestep"].item()) for s in samples] == [float(t) for t in lcm.timesteps]


@pytest.mark.parametrize("vega", [True, False])
def test_the_tiny_lora_changes_every_module_it_targets(tmp_path, vega):
    """Attention and convolution weights alike, loaded without peft's "additional target
    modules" warning (its attention keys were once saved under diffusers' old names, which
    diffusers skipped: only the convolutions changed)."""
    import warnings

    import torch

    from export import lora, tiny

    pipeline = tiny.build_pipeline(tmp_path, vega=vega)
    before = {k: v.clone() for k, v in pipeline.unet.state_dict().items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lora.fuse_into(pipeline, [(tiny.save_lora(tmp_path, vega=vega), 1.0)])
    assert not [w for w in caught if "target modules" in str(w.message)]
    targets = ("to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2")
    targeted = [k for k in before if k.endswith(".weight") and k[:-7].endswith(targets)]
    after = pipeline.unet.state_dict()
    assert {t for t in targets if any(k[:-7].endswith(t) for k in targeted)} == set(targets)
    assert [k for k in targeted if torch.equal(before[k], after[k])] == []


@pytest.fixture(scope="module")
def compressed(models_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    shutil.copytree(models_dir / "tiny-base" / "fp16", folder / "tiny-base" / "fp16")
    export_model("tiny-base", "int8-weights", folder)
    return folder


def test_int8_weights_variant_compresses_every_part(compressed):
    fp16, int8 = (compressed / "tiny-base" / v for v in ("fp16", "int8-weights"))
    for part in ("unet", "text_encoder", "text_encoder_2", "vae_decoder"):
        model = ov.Core().read_model(int8 / part / "openvino_model.xml")
        types = {op.get_output_element_type(0).get_type_name() for op in model.get_ops()
                 if op.get_type_name() == "Constant"}
        assert types & {"u8", "i8"}, part
        assert (int8 / part / "openvino_model.bin").stat().st_size < \
            (fp16 / part / "openvino_model.bin").stat().st_size
    manifest = json.loads((int8 / "manifest.json").read_text())
    assert manifest["variant"] == "int8-weights" and "weight compression" in manifest["method"]
    assert (int8 / "tokenizer" / "openvino_tokenizer.xml").is_file()


def test_int8_weights_variant_generates(compressed):
    from pipelines import generate
    from pipelines.requests import Text2Image, validate

    loaded = Registry(compressed).get("tiny-base", "int8-weights")
    result = generate.run(loaded, validate(Text2Image(
        prompt="a cat", model_id="tiny-base", variant="int8-weights", steps=20, width=512,
        height=512, seed=1)))
    assert result.image.size == (512, 512) and np.asarray(result.image).std() > 0


def test_int8_weights_with_taesd_adds_the_fp16_tiny_autoencoder_only(compressed):
    """A Tiny Autoencoder has fp16 and int8 variants, not int8-weights: --taesd exports the
    fp16 one and the command succeeds."""
    from export.__main__ import main

    assert main(["tiny-base", "--variant", "int8-weights", "--taesd",
                 "--models-dir", str(compressed)]) == 0
    registry = Registry(compressed)
    assert registry.has_autoencoder("tiny-taesd", "fp16")
    assert not registry.has_autoencoder("tiny-taesd", "int8")


@pytest.mark.parametrize("model, variant, repo", [
    ("segmind-vegart", "fp16", "segmind/Segmind-Vega"),
    ("segmind-vegart", "int8", "segmind/Segmind-Vega"),
    ("sdxl-base", "int8-weights", "stabilityai/stable-diffusion-xl-base-1.0")])
def test_real_models_fail_at_once_offline(tmp_path, capsys, model, variant, repo):
    from export.__main__ import main

    assert main([model, "--variant", variant, "--models-dir", str(tmp_path)]) == 2
    stderr = capsys.readouterr().err
    assert "HF_HUB_OFFLINE is set" in stderr and repo in stderr
    assert not (tmp_path / model).exists()
