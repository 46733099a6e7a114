"""The benchmark's memory limit: a child really runs inside a memory cgroup of that size (one
that needs more is killed by it), and the report says whether a configuration fits."""

import sys

import pytest

from benchmarks import report
from benchmarks.int8_unet import run_measured
from benchmarks.memlimit import MemoryLimit, Unavailable

# Touches every page of `size` MB, so that the memory is really charged.
ALLOCATE = "import sys; b = bytearray(int(sys.argv[1]) * 2**20); b[::4096] = b'x' * len(b[::4096])"
MB = 2**20


def cgroups_available() -> bool:
    try:
        with MemoryLimit(512 * MB, empty_page_cache=False):
            return True
    except Unavailable:
        return False


needs_cgroups = pytest.mark.skipif(not cgroups_available(),
                                   reason="this machine gives no memory cgroup to create")


@needs_cgroups
def test_a_child_runs_within_the_limit_and_its_peak_is_reported():
    done = run_measured([sys.executable, "-c", ALLOCATE, "200"], 0, memory_limit=600 * MB)
    assert done["returncode"] == 0 and not done["killed_by_memory_limit"]
    assert 0.19 < done["memory_limit_peak_gb"] <= round(600 / 1024, 2)


@needs_cgroups
def test_a_child_that_needs_more_is_killed_by_the_limit():
    done = run_measured([sys.executable, "-c", ALLOCATE, "400"], 0, memory_limit=200 * MB)
    assert done["returncode"] != 0 and done["killed_by_memory_limit"]
    assert done["memory_limit_peak_gb"] <= round(200 / 1024, 2)  # as reported, to 0.01 GB


def test_the_report_says_which_configuration_fits_the_limit():
    ran = {"label": "ours", "median_seconds": {"W1": {"total": 30.0}}, "peak_rss_gb": 4.9,
           "memory_limit_peak_gb": 4.99}
    summary = {"memory_limit_gb": 5.0, "configs": {
        "e-int8-taesd": ran,
        "e-fp16-taesd": {"label": "fp16", "failed": "killed by the memory limit"}}}
    targets = report._targets(summary)
    assert targets["e-int8-taesd runs within a 5 GB memory limit"] == "yes"
    assert targets["e-fp16-taesd runs within a 5 GB memory limit"] == (
        "no (killed by the memory limit)")
    assert "e-int8-taesd peak RSS ≤ 5 GB" in targets
