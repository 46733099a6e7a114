"""`python app.py --ray local --replicas 2`, as a user starts it: its own local Ray cluster, two
model-worker replicas, gradio_client requests end to end; and a cluster that cannot be reached
stops the start with a message."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

pytest.importorskip("ray")
from gradio_client import Client  # noqa: E402

from benchmarks.app_process import free_port, start as start_app, stop, wait_until_up  # noqa: E402

START_SECONDS = 240  # Ray, Serve and two replicas on 2 CPUs: about 40 s here


@pytest.fixture(scope="module")
def ray_app(models_dir, tmp_path_factory):
    port, log = free_port(), tmp_path_factory.mktemp("ray-app") / "app.log"
    process = start_app(log, "--ray", "local", "--replicas", "2", "--models-dir",
                        str(models_dir), "--port", str(port))
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(process, url, log, START_SECONDS)
        family = psutil.Process(process.pid).children(recursive=True)  # Ray's processes
        yield url
    finally:
        # As docker stop or systemd end it (SIGINT would do, but a background job's
        # children ignore it): the app shuts its Ray cluster down.
        stop(process)
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"Ray processes left running: {[p.name() for p in alive]}"


def test_the_app_serves_concurrent_requests_on_both_replicas(ray_app):
    client = Client(ray_app, verbose=False)

    def generate(seed):
        return client.predict("a red fox in snow", seed, False, 1, 256, 256, "fp16", True,
                              "tiny", api_name="/text_to_image")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(generate, [11, 12]))
    assert [seed for _, seed, _, _ in results] == [11, 12]
    replicas = {info.split("replica ")[1].split()[0] for _, _, info, _ in results}
    assert len(replicas) == 2, [info for _, _, info, _ in results]  # one each, at once


def test_real_time_mode_and_the_comparison_run_on_the_workers(ray_app):
    client = Client(ray_app, verbose=False)
    _, seed, info, _ = client.predict(True, "a lighthouse", 5, 1, 256, 256, "fp16", True, "tiny",
                                      api_name="/realtime")
    assert seed == 5 and "replica " in info
    fp16, int8, table, _, _ = client.predict("a lighthouse", 1, 5, api_name="/compare")
    assert Path(fp16).is_file() and Path(int8).is_file() and "PSNR" in table


def test_status_line_says_where_generations_run(ray_app):
    config = httpx.get(f"{ray_app}config", timeout=10).text
    assert "Ray Serve model workers" in config and "2 replicas running" in config


def test_an_unreachable_cluster_stops_the_start_with_a_message(models_dir, tmp_path):
    log = tmp_path / "app.log"
    process = start_app(log, "--ray", f"127.0.0.1:{free_port()}", "--models-dir",
                        str(models_dir))
    process.wait(timeout=120)
    assert process.returncode == 1
    output = log.read_text()
    assert "No Ray cluster could be reached" in output and "ray start --head" in output
