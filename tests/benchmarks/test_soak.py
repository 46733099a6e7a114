"""`python -m benchmarks.soak`, for seconds instead of half an hour: every kind of request
goes through the app's queue as the page sends it, and the server's memory and threads are
read (figures meaningless, code paths real)."""

import json
import os
import subprocess
import sys

from benchmarks import soak


def test_a_short_soak_answers_every_kind_and_reads_the_server(models_dir, tmp_path):
    env = {**os.environ, "TURBO_BENCH_MACHINE": "ci"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--minutes", "0.1", "--clients", "3",
         "--models-dir", str(models_dir), "--results", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "soak-ci.json").read_text())
    # The warm-up sent each kind once: an image each, the batch's stopped or made.
    assert set(summary["warm_up"]) == set(soak.KINDS)
    assert all(outcome in ("image", "stopped") for outcome in summary["warm_up"].values())
    assert summary["unanswered"] == 0 and summary["errors"] == {}
    assert summary["requests"] >= 3 and summary["targets"]["unanswered requests"]["met"]
    server = summary["server"]
    assert server["samples"] and server["end"]["threads"] > 0 and server["end"]["rss_gb"] > 0
    assert "| server | RSS GB | threads |" in (tmp_path / "soak-ci.md").read_text()


def summary_of(threads_at) -> dict:
    """A soak's summary with one sample every 10 s for 30 min, RSS flat, threads as given."""
    samples = [{"s": s, "rss_gb": 1.0, "threads": threads_at(s)} for s in range(0, 1810, 10)]
    return {"unanswered": 0, "server": soak._server(samples)}


def test_threads_that_rise_while_the_caches_fill_and_then_hold_are_flat():
    rising_then_held = summary_of(lambda s: 120 + min(s, 240) // 3)  # 120 → 200 by 4 min
    server = rising_then_held["server"]
    assert server["after_first_minute"]["threads"] == 143  # the median at 60, 70 and 80 s
    assert server["most_threads"] == 200
    assert soak.targets(rising_then_held)["threads at the end ÷ after five minutes"]["met"]


def test_threads_that_go_on_rising_are_not_flat():
    leaking = summary_of(lambda s: 120 + s // 30)  # a thread every 30 s: 130 → 180 from 5 min
    assert not soak.targets(leaking)["threads at the end ÷ after five minutes"]["met"]
    assert soak.targets(leaking)["RSS at the end ÷ after the first minute"]["met"]
