"""The compute floor: peaks measured on kernels OpenVINO really runs in their precision, and each
stage's floor from its FLOPs at the peak of the precision it computes in."""

import pytest

from benchmarks import floor, report


def test_the_int8_peak_is_measured_on_a_kernel_openvino_runs_in_int8():
    flops_per_second, kernel = floor.peak("int8", repeats=1)
    layer, _primitive, precision = kernel.split()
    assert layer in ("FullyConnected", "Convolution") and precision in ("u8", "i8"), kernel
    assert flops_per_second > 1e9


def test_each_stage_has_its_floor_at_the_peak_of_the_precision_it_computes_in():
    flops = {"text encoders": 0.1, "UNet": 2.0, "decoder": 0.6, "VAE encoder": 0.4,
             "TAESD decoder": 0.2, "TAESD encoder": 0.1}
    peaks = {"bf16": 1e12, "int8": 2e12}
    fp16 = floor.floor_seconds(flops, peaks, unet_calls=2, img2img=True, taesd=True)
    assert fp16 == pytest.approx({"text encoders": 0.1, "VAE encoder": 0.1, "UNet": 4.0,
                                  "decoder": 0.2, "total": 4.4})
    int8 = floor.floor_seconds(flops, peaks, unet_calls=1, img2img=False, taesd=False,
                               int8=frozenset({"UNet"}))
    assert int8 == pytest.approx({"text encoders": 0.1, "UNet": 1.0, "decoder": 0.6,
                                  "total": 1.7})


def test_the_report_shows_each_w1_stage_against_its_floor():
    summary = {"configs": {"e-int8-taesd": {
        "median_seconds": {"W1": {"text encoders": 0.2, "UNet": 3.0, "decoder": 0.5,
                                  "total": 3.8}},
        "floor_seconds": {"W1": {"text encoders": 0.1, "UNet": 2.0, "decoder": 0.25,
                                 "total": 2.35}}}}}
    report.add_ratios(summary)
    ratios = summary["configs"]["e-int8-taesd"]["times_floor"]["W1"]
    assert ratios == {"text encoders": 2.0, "UNet": 1.5, "decoder": 2.0, "total": 1.62}
    assert summary["targets"]["W1 within 1.25× the compute floor"]["value"] == pytest.approx(
        3.8 / 2.35, abs=0.001)
    assert "| UNet | 3.0 | 2.0 | 1.5 |" in report.floor_table(summary)
