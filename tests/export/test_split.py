"""Calibrating the UNet in pieces (export/split.py): the surgery is exact, and the stitched INT8
UNet is the model a single NNCF pass makes, in one IR that generates."""

import collections
import json

import numpy as np
import openvino as ov
import psutil
import pytest

from export import export_model, quantize, split
from pipelines import generate
from pipelines.registry import Registry
from pipelines.requests import Text2Image, validate
from export.standins import INT8_SAMPLES

PIECES = 3


def unet(folder) -> ov.Model:
    return ov.Core().read_model(folder / "unet" / "openvino_model.xml")


def unet_inputs(seed: int = 0) -> dict:
    """Inputs of the tiny UNet at 512², as the pipeline feeds it."""
    rng = np.random.default_rng(seed)
    return {"sample": rng.standard_normal((1, 4, 64, 64), dtype=np.float32),
            "timestep": np.array([999], dtype=np.int64),
            "encoder_hidden_states": rng.standard_normal((1, 77, 64), dtype=np.float32),
            "text_embeds": rng.standard_normal((1, 32), dtype=np.float32),
            "time_ids": np.array([[512, 512, 0, 0, 512, 512]], dtype=np.float32)}


def run(model: ov.Model, inputs: dict) -> np.ndarray:
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(inputs)[0]


def signature(model: ov.Model) -> list:
    return [(sorted(port.get_names()), str(port.get_partial_shape()), port.get_element_type())
            for port in [*model.inputs, *model.outputs]]


def constant(source) -> np.ndarray:
    """The value of a constant input (saved as FP16 with a Convert, or as is)."""
    node = source.get_node()
    while node.get_type_name() != "Constant":
        node = node.input_value(0).get_node()
    return node.get_data().astype(np.float32)


def fake_quantizes(model: ov.Model) -> dict:
    return {op.get_friendly_name(): op for op in model.get_ops()
            if op.get_type_name() == "FakeQuantize"}


@pytest.mark.parametrize("pieces", [2, 5])
def test_split_and_stitch_reproduces_the_fp16_unet_exactly(models_dir, pieces):
    xml = models_dir / "tiny" / "fp16" / "unet" / "openvino_model.xml"
    original = ov.Core().read_model(xml)
    assignment = split.plan(original, pieces)
    parts = [split.piece(ov.Core().read_model(xml), assignment, k) for k in range(pieces)]
    assert all(len(part.get_ops()) < 0.7 * len(original.get_ops()) for part in parts)
    assert all(part.get_parameters() and part.get_results() for part in parts)
    stitched = split.stitch(parts, split.input_names(original))
    assert signature(stitched) == signature(original)
    inputs = unet_inputs()
    assert np.array_equal(run(stitched, inputs), run(original, inputs))


@pytest.fixture(scope="module")
def split_export(models_dir, tmp_path_factory):
    """The tiny model's INT8 variant calibrated in PIECES pieces, in a models folder of its own."""
    folder = tmp_path_factory.mktemp("split-models")
    export_model("tiny", "int8", models_dir, folder / "tiny" / "int8", samples=INT8_SAMPLES,
                 split=PIECES)
    return folder


def test_stitched_int8_unet_has_the_fp16_unets_inputs_and_outputs(models_dir, split_export):
    assert (signature(unet(split_export / "tiny" / "int8"))
            == signature(unet(models_dir / "tiny" / "fp16")))
    manifest = json.loads((split_export / "tiny" / "int8" / "manifest.json").read_text())
    assert manifest["quantization"]["split"] == PIECES
    assert json.loads((models_dir / "tiny" / "int8" / "manifest.json").read_text())[
        "quantization"]["split"] == 1  # the tiny UNet fits any RAM in one pass


def test_every_piece_is_quantized(models_dir, split_export):
    assignment = split.plan(unet(models_dir / "tiny" / "fp16"), PIECES)
    quantized_pieces = {assignment[target.get_node().get_friendly_name()]
                        for fq in fake_quantizes(unet(split_export / "tiny" / "int8")).values()
                        for target in fq.output(0).get_target_inputs()
                        if target.get_node().get_friendly_name() in assignment}
    assert quantized_pieces == set(range(PIECES))


def test_pieces_quantize_as_one_pass_does(models_dir, split_export):
    """Same quantizers with the same ranges as the one-pass INT8 (the session's): each piece is
    calibrated on what the FP16 pieces before it produce. A tensor that pieces on both sides of
    a cut read gets a quantizer in each: at most one more per cut."""
    whole = fake_quantizes(unet(models_dir / "tiny" / "int8"))
    pieces = fake_quantizes(unet(split_export / "tiny" / "int8"))
    assert set(whole) <= set(pieces) and len(pieces) - len(whole) <= PIECES - 1
    for name, fq in whole.items():
        for port in (1, 2):  # input low and high
            expected, got = (constant(q.input_value(port)) for q in (fq, pieces[name]))
            assert np.allclose(got, expected, rtol=1e-2, atol=1e-4 * np.abs(expected).max())


def test_stitched_int8_unet_generates(split_export):
    loaded = Registry(split_export).get("tiny", "int8")
    request = validate(Text2Image(prompt="a red fox", model_id="tiny", variant="int8", seed=5,
                                  width=384, height=256))
    assert generate.run(loaded, request).image.size == (384, 256)


def test_default_split_follows_the_ram(tmp_path, monkeypatch):
    xml = tmp_path / "unet" / "openvino_model.xml"
    xml.parent.mkdir()
    with open(xml.with_suffix(".bin"), "wb") as weights:  # sparse: the full-size UNet's size
        weights.truncate(5_135_000_000)
    for gigabytes, pieces in ((16, 8), (24, 5), (32, 4), (128, 1)):
        memory = collections.namedtuple("memory", "total")(gigabytes * 2**30)
        monkeypatch.setattr(psutil, "virtual_memory", lambda memory=memory: memory)
        assert quantize.default_split(xml) == pieces


@pytest.mark.parametrize("options", [dict(split=0), dict(method="hybrid", split=2)])
def test_bad_split_is_refused(models_dir, tmp_path, options):
    with pytest.raises(ValueError, match="--split"):
        export_model("tiny", "int8", models_dir, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()
