"""`python -m benchmarks.scale`'s arithmetic and report, on made-up measurements: no Ray, no
model (a Ray run takes minutes; `python -m benchmarks.scale --quick` is that check)."""

import json

import pytest
from PIL import Image

from benchmarks import scale


def test_percentiles_interpolate_between_order_statistics():
    values = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5]  # unsorted on purpose
    assert scale.percentile(values, 0.5) == pytest.approx(5.5)
    assert scale.percentile(values, 0.95) == pytest.approx(9.55)
    assert scale.percentile(values, 0) == 1 and scale.percentile(values, 1) == 10
    assert scale.percentile([3.0], 0.95) == 3.0
    with pytest.raises(ValueError):
        scale.percentile([], 0.5)


def test_a_load_test_is_images_per_minute_over_the_wall_time():
    run = scale.load_summary(2, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], wall_seconds=30.0)
    assert run["throughput_per_minute"] == 12.0  # 6 images in half a minute
    assert run["p50_seconds"] == 3.5 and run["p95_seconds"] == pytest.approx(5.75)


def summary(hop_percent: float = 2.0) -> dict:
    runs = [scale.load_summary(n, [float(n)] * 8, wall_seconds=wall) for n, wall in
            ((1, 60.0), (2, 32.0), (4, 18.0))]  # 8, 15 and 26.67 images per minute
    for run in runs:
        run.update(threads=8 // run["replicas"], served_by={f"r{i}": 8 // run["replicas"]
                                                            for i in range(run["replicas"])},
                   ray_memory_idle=scale.memory_summary(
                       [{"pid": 1, "role": "head", "command": "gcs_server", "rss_gb": 0.25},
                        {"pid": 2, "role": "serve controller", "command": "x", "rss_gb": 0.25}]
                       + [{"pid": 10 + i, "role": "replica", "command": "ray::ServeReplica",
                           "rss_gb": 0.5} for i in range(run["replicas"])]))
    runs.append({"replicas": 16, "skipped": "needs 16 cores, 8 here"})
    scale.add_efficiency(runs)
    result = {"benchmark": "scale", "machine": "ci-quick", "quick": True,
              "cpu": {"name": "a CPU"}, "cpu_count": 8, "model": "tiny", "variant": "fp16",
              "decoder": "full VAE", "workload": scale.W1,
              "settings": {"replicas": [1, 2, 4, 16], "clients": 4, "requests": 8},
              "runs": runs,
              "hop": scale.hop_summary([(0.5 + hop_percent / 100, 0.5)] * 3,
                                       [(1.0, 1.0)] * 3, [0.01, 0.02, 0.03])}
    result["targets"] = scale.targets(result)
    return result


def test_efficiency_is_throughput_over_n_times_one_replicas():
    runs = summary()["runs"]
    assert [r.get("efficiency") for r in runs] == [1.0, 0.938, 0.833, None]


def test_targets_check_the_hop_and_four_replicas_efficiency():
    found = summary(hop_percent=2.0)["targets"]
    assert found["Ray hop ≤ 5% of W1"] == {"value": 2.0, "limit": 5.0, "unit": "%", "met": True}
    assert found["scaling efficiency ≥ 0.85 at 4 replicas"]["met"] is False  # 0.833
    assert summary(hop_percent=6.0)["targets"]["Ray hop ≤ 5% of W1"]["met"] is False


def test_the_hop_is_the_time_outside_the_run_through_ray_less_in_process():
    # Through Ray the runs themselves were faster (another process, another moment): only
    # the time around each run counts, 60 ms against 10 ms.
    through_ray = [(0.86, 0.8), (0.96, 0.9), (3.0, 1.0)]
    in_process = [(1.0, 0.99), (0.99, 0.98), (1.5, 1.49)]
    hop = scale.hop_summary(through_ray, in_process, [0.01, 0.02, 0.5])
    assert hop["ray_outside_run_ms"] == 60.0 and hop["local_outside_run_ms"] == 10.0
    assert hop["hop_ms"] == 50.0 and hop["hop_percent_of_w1"] == 5.0  # of W1 1.0 s in-process
    assert hop["empty_call_median_ms"] == 20.0


def test_ray_memory_splits_head_and_replicas():
    memory = summary()["runs"][1]["ray_memory_idle"]
    assert memory["head_gb"] == 0.5 and memory["workers_gb"] == 1.0
    assert memory["per_replica_gb"] == [0.5, 0.5]
    assert scale._role("ray::ServeReplica:turbo-studio:ModelWorker") == "replica"
    assert scale._role("/x/ray/core/src/ray/raylet/raylet --raylet_socket") == "head"


def test_it_writes_json_markdown_and_a_chart(tmp_path):
    base = scale.write(summary(), tmp_path)
    assert base == tmp_path / "scale-ci-quick"
    written = json.loads(base.with_suffix(".json").read_text())
    assert written["runs"][2]["efficiency"] == 0.833
    table = base.with_suffix(".md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| 1 | 8 | 8.00 | 1.00 | 1.00 | 1.00 | 8 | 0.50 | 0.50 |")
    assert rows[3].startswith(
        "| 4 | 2 | 26.67 | 4.00 | 4.00 | 0.83 | 2 / 2 / 2 / 2 | 0.50 | 2.00 |")
    assert rows[4].startswith("| 16 | needs 16 cores, 8 here |")
    assert "| scaling efficiency ≥ 0.85 at 4 replicas | 0.833 | no |" in table
    assert "leave replicas idle" not in table  # 4 clients for 4 replicas (16 did not run)
    with Image.open(base.with_suffix(".png")) as chart:
        assert chart.format == "PNG" and chart.width > 300


def test_fewer_clients_than_replicas_is_noted(tmp_path):
    few = summary()
    few["settings"]["clients"] = 2
    assert "2 clients leave replicas idle at 4 replicas" in scale.markdown(few)
