"""The benchmark report's ratios and targets on a run whose answers are known by hand, and the
provenance every results file records."""

import json
import os
import subprocess
import time
from importlib import metadata
from pathlib import Path

from benchmarks import report


def entry(**totals) -> dict:
    return {"median_seconds": {w: {"total": seconds} for w, seconds in totals.items()}}


def test_ratios_and_targets_of_a_run_known_by_hand():
    summary = {"configs": {"a0": entry(W1=4.0, W2=5.0), "c-fp16": entry(W1=2.0),
                           "e-int8": entry(W1=1.2, W5=1.5), "e-fp16": entry(W1=1.0, W2=2.0,
                                                                            W5=0.8)}}
    report.add_ratios(summary)
    assert summary["configs"]["a0"]["ratio_to_a0"] == {"W1": 1.0, "W2": 1.0}
    assert summary["configs"]["e-fp16"]["ratio_to_a0"] == {"W1": 0.25, "W2": 0.4}
    assert summary["configs"]["c-fp16"]["ratio_to_a0"] == {"W1": 0.5}
    targets = summary["targets"]
    assert targets["best turbo-studio (W1)"] == "e-fp16"  # 1.0 s against e-int8's 1.2 s
    assert targets["W1 ≤ 0.27× a0"] == {"value": 0.25, "limit": 0.27, "unit": "×", "met": True}
    assert targets["W1 ≤ 0.9× openvino.genai (c-fp16)"]["value"] == 0.5
    assert targets["W2 ≤ 0.3× a0 (e-fp16)"] == {"value": 0.4, "limit": 0.3, "unit": "×",
                                                "met": False}
    assert targets["W5 per image ≤ 0.9× W1 (e-fp16)"]["value"] == 0.8  # its own W1, not e-int8's


def test_a_configuration_that_did_not_run_gets_no_ratio():
    summary = {"configs": {"a0": entry(W1=4.0), "e-fp16": {"skipped": "needs TAESD"}}}
    report.add_ratios(summary)
    assert "ratio_to_a0" not in summary["configs"]["e-fp16"] and summary["targets"] == {}


def test_every_results_file_records_where_it_was_run(tmp_path):
    summary = {"benchmark": "a test", "median_s": 1.5}
    report.write(tmp_path / "run", summary, "| a | table |\n")
    written = json.loads((tmp_path / "run.json").read_text())
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=Path(report.__file__).parents[1]).stdout.strip()
    assert written["commit"].split("+")[0] == head and written["median_s"] == 1.5
    assert written["date"] == time.strftime("%Y-%m-%d")
    assert written["versions"]["openvino"] == metadata.version("openvino")
    assert written["cpu"]["name"] and written["cpu_count"] == os.cpu_count()
    text = (tmp_path / "run.md").read_text()
    assert text.startswith("| a | table |") and f"at commit {written['commit']}" in text
    # What a benchmark recorded itself is kept.
    report.write(tmp_path / "own", {"date": "2026-01-01"})
    assert json.loads((tmp_path / "own.json").read_text())["date"] == "2026-01-01"
    assert not (tmp_path / "own.md").exists()
