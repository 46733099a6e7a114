"""`python -m benchmarks.text_encoders --quick`: INT8 against FP16 text encoders, on the tiny
stand-in's INT8 export (which compresses them by default)."""

import json
import os
import subprocess
import sys


def test_int8_text_encoders_are_measured_against_fp16(models_dir, tmp_path):
    env = {**os.environ, "TURBO_BENCH_QUICK_DIR": str(models_dir), "TURBO_BENCH_MACHINE": "ci"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.text_encoders", "--quick",
                           "--prompts", "2", "--results", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "text_encoders-ci-quick.json").read_text())
    assert len(results["psnr_db"]) == 2 and min(results["psnr_db"]) > 30  # close, not noise
    disk = results["text_encoders_disk_mb"]
    assert disk["int8"] < disk["fp16"]
    for side in results["sides"].values():
        assert side["peak_rss_gb"] > 0 and side["text_encoders_seconds_median"] > 0
    assert "| int8 |" in (tmp_path / "text_encoders-ci-quick.md").read_text()
