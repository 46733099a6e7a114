"""`python -m benchmarks.throughput --quick`: W6, several clients at once through the app's
queue, on the tiny stand-in (figures meaningless, code paths real)."""

import json
import os
import subprocess
import sys


def test_many_clients_are_measured_through_the_apps_queue(models_dir, tmp_path):
    env = {**os.environ, "TURBO_BENCH_MACHINE": "ci"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.throughput", "--quick", "--clients", "3",
         "--seconds", "3", "--models-dir", str(models_dir), "--results", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "throughput-ci-quick.json").read_text())
    single, many = summary["single_client"], summary["many_clients"]
    assert single["clients"] == 1 and single["requests"] >= 1
    assert many["clients"] == 3 and many["requests"] >= 3  # every client sent at least one
    for phase in (single, many):
        assert phase["failures"] == []
        assert 0 < phase["p50_seconds"] <= phase["p95_seconds"]
        assert phase["throughput_per_minute"] > 0
    assert summary["app_peak_rss_gb"] > 0  # read from the app's own process
    assert summary["targets"]["failed requests"]["met"]
    markdown = (tmp_path / "throughput-ci-quick.md").read_text()
    assert "| 3 | " in markdown and "one client's" in markdown
