"""INT8 export of the tiny stand-in (made once per session by conftest, through optimum-intel's
OVQuantizer and NNCF): the graph really is quantized, smaller, generates, and is documented."""

import collections
import json
import sys
import types

import numpy as np
import openvino as ov
import pytest

from export import export_model, quantize
from pipelines import catalogue, generate
from pipelines.errors import InvalidRequest
from pipelines.requests import Text2Image, validate
from export.standins import INT8_SAMPLES


def unet_ops(folder) -> collections.Counter:
    model = ov.Core().read_model(folder / "unet" / "openvino_model.xml")
    return collections.Counter(
        (op.get_type_name(), str(op.get_output_element_type(0))) for op in model.get_ops())


def test_int8_unet_holds_quantized_operations(models_dir):
    ops = unet_ops(models_dir / "tiny" / "int8")
    assert ops[("FakeQuantize", "<Type: 'float32'>")] > 20
    assert ops[("Constant", "<Type: 'int8_t'>")] > 20  # weights stored as INT8
    fp16_ops = unet_ops(models_dir / "tiny" / "fp16")
    assert not any(kind == "FakeQuantize" for kind, _ in fp16_ops)


def test_int8_unet_is_smaller(models_dir):
    size = lambda variant: (models_dir / "tiny" / variant / "unet"  # noqa: E731
                            / "openvino_model.bin").stat().st_size
    assert size("int8") < 0.7 * size("fp16")


def test_ignored_scope_keeps_the_notebooks_convolutions_unquantized(models_dir):
    unet = ov.Core().read_model(models_dir / "tiny" / "int8" / "unet" / "openvino_model.xml")
    ignored = json.loads((models_dir / "tiny" / "int8" / "manifest.json").read_text())[
        "quantization"]["ignored_scope"]["names"]
    assert len(ignored) == 3 and any("conv_in" in n for n in ignored)
    assert any("up_blocks.1.resnets.1.conv_shortcut" in n for n in ignored)  # tiny's last block
    weights_of = {op.get_friendly_name(): op.input_value(1).get_node() for op in unet.get_ops()
                  if op.get_type_name() == "Convolution"}
    for name in ignored:  # ignored: weights still float (FP16 → Convert), no FakeQuantize
        assert weights_of[name].get_type_name() != "FakeQuantize"


def test_int8_variant_generates_an_image_of_the_requested_size(registry):
    loaded = registry.get("tiny", "int8")
    request = validate(Text2Image(prompt="a red fox", model_id="tiny", variant="int8",
                                  seed=5, width=384, height=256))
    result = generate.run(loaded, request)
    assert result.image.size == (384, 256)
    again = generate.run(loaded, request)
    assert np.array_equal(np.asarray(result.image), np.asarray(again.image))


def test_manifest_is_complete(models_dir):
    manifest = json.loads((models_dir / "tiny" / "int8" / "manifest.json").read_text())
    details = manifest["quantization"]
    assert manifest["variant"] == "int8" and "NNCF" in manifest["method"]
    assert details["method"] == "full" and details["samples"] == INT8_SAMPLES
    assert details["model_type"] == "transformer" and details["peak_rss_gb"] > 0
    assert {"nncf", "openvino"} <= set(manifest["versions"])
    assert {"unet", "text_encoder", "vae_decoder", "total"} <= set(manifest["sizes_bytes"])
    assert manifest["export_seconds"] > 0
    # openvino.genai reads the OpenVINO tokenizers; the quantizer does not save them.
    assert (models_dir / "tiny" / "int8" / "tokenizer" / "openvino_tokenizer.xml").is_file()


def test_calibration_prompts_ship_with_the_app():
    prompts = quantize.load_prompts()
    assert len(prompts) >= 200 and len(set(prompts)) == len(prompts)


def test_the_int8_variant_compresses_the_text_encoders_by_default(models_dir):
    """INT8 weights for both text encoders: GBs less memory for a full-size model (README)."""
    folder = models_dir / "tiny" / "int8"
    manifest = json.loads((folder / "manifest.json").read_text())["quantization"]
    assert manifest["text_encoders"] == "int8 weights"
    for name in ("text_encoder", "text_encoder_2"):
        encoder = ov.Core().read_model(folder / name / "openvino_model.xml")
        assert any(op.get_output_element_type(0) in (ov.Type.u8, ov.Type.i8)
                   for op in encoder.get_ops() if op.get_type_name() == "Constant"), name


def test_hybrid_and_text_encoder_compression(models_dir, tmp_path):
    out = export_model("tiny", "int8", models_dir, tmp_path / "hybrid", method="hybrid",
                       samples=2, compress_text_encoders=True)
    manifest = json.loads((out / "manifest.json").read_text())["quantization"]
    assert manifest["method"] == "hybrid" and manifest["text_encoders"] == "int8 weights"
    ops = unet_ops(out)
    assert ops[("Constant", "<Type: 'uint8_t'>")] + ops[("Constant", "<Type: 'int8_t'>")] > 10
    encoder = ov.Core().read_model(out / "text_encoder" / "openvino_model.xml")
    assert any(str(op.get_output_element_type(0)) in ("<Type: 'uint8_t'>", "<Type: 'int8_t'>")
               for op in encoder.get_ops() if op.get_type_name() == "Constant")


@pytest.mark.parametrize("options, message", [
    (dict(method="int4"), "Unknown method"),
    (dict(samples=0), "at least 1"),
])
def test_bad_quantization_options_are_refused_and_nothing_is_written(models_dir, tmp_path,
                                                                   options, message):
    with pytest.raises(ValueError, match=message):
        export_model("tiny", "int8", models_dir, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_int8_of_an_unexported_real_model_says_what_is_missing(tmp_path):
    from export.convert import HubUnreachable

    with pytest.raises(HubUnreachable, match="stabilityai/sdxl-turbo"):
        export_model("sdxl-turbo", "int8", tmp_path)
    assert (catalogue.export_command("sdxl-turbo", "int8")
            == "python -m export sdxl-turbo --variant int8")


def test_memory_saving_options_are_applied_and_recorded(models_dir, tmp_path):
    out = export_model("tiny", "int8", models_dir, tmp_path / "lean", samples=2,
                       smooth_quant=False, bias_correction=False, calibration_size=256)
    details = json.loads((out / "manifest.json").read_text())["quantization"]
    assert (details["smooth_quant"], details["bias_correction"]) == ("off", "off")
    assert details["calibration_size"] == 256
    smoothed = lambda folder: any("smooth_quant" in op.get_friendly_name() for op in  # noqa: E731
                                  ov.Core().read_model(
                                      folder / "unet" / "openvino_model.xml").get_ops())
    assert smoothed(models_dir / "tiny" / "int8") and not smoothed(out)
    assert unet_ops(out)[("FakeQuantize", "<Type: 'float32'>")] > 20


def test_a_calibration_dataset_offline_fails_at_once(models_dir, tmp_path):
    from export.convert import HubUnreachable

    with pytest.raises(HubUnreachable, match="calibration_prompts.txt"):
        export_model("tiny", "int8", models_dir, tmp_path / "out", dataset="some/captions")
    assert not (tmp_path / "out").exists()


def test_a_dataset_without_a_caption_column_names_the_columns(monkeypatch):
    class Rows(list):
        column_names = ["image", "url"]

    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda *args, **kwargs: Rows([{"image": None, "url": "x"}])
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(InvalidRequest, match="no caption column.*image, url.*caption, prompt"):
        quantize.load_prompts("someone/pictures")
    Rows.column_names = None  # a streamed dataset that does not know: its first row tells
    with pytest.raises(InvalidRequest, match="image, url"):
        quantize.load_prompts("someone/pictures")
    fake.load_dataset = lambda *args, **kwargs: Rows([{"text": "a cat"}, {"text": "a dog"}])
    assert quantize.load_prompts("someone/captions", limit=1) == ["a cat"]
