"""The model workers on a local Ray cluster sized for CI (2 CPUs, a small object store, no
dashboard), two replicas of the tiny stand-in, reached as the UI reaches them: through
cluster.start.connect and the RayEngine it returns. The tests start Ray and shut it down."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

ray = pytest.importorskip("ray")
from ray import serve  # noqa: E402

from cluster.engine import WorkerLost  # noqa: E402
from cluster.start import connect  # noqa: E402
from cluster.worker import APP, DEPLOYMENT  # noqa: E402
from pipelines import generate  # noqa: E402
from pipelines.engine import LocalEngine  # noqa: E402
from pipelines.errors import ModelNotAvailable  # noqa: E402
from pipelines.registry import Registry, ram_estimate  # noqa: E402
from pipelines.requests import Text2Image, validate  # noqa: E402
from pipelines.settings import Settings  # noqa: E402
from pipelines.stream import Preview  # noqa: E402


@pytest.fixture(scope="module")
def ui_registry(models_dir):
    return Registry(models_dir, cache=False)


@pytest.fixture(scope="module")
def engine(models_dir, ui_registry):
    # Each replica's RAM budget holds one tiny model, not two: multiplexing must keep to it.
    one_model = ram_estimate(models_dir / "tiny" / "fp16") * 1.5
    settings = Settings(models_dir=models_dir, ram_budget_gb=2 * one_model / 2**30)
    engine = connect(settings, ui_registry, "local", replicas=2)
    yield engine
    serve.shutdown()
    ray.shutdown()


def request(registry, **fields):
    fields = dict(dict(prompt="a lighthouse at dusk", model_id="tiny", seed=7, width=256,
                       height=256, steps=2), **fields)
    return validate(Text2Image(**fields), registry.catalogue)


def replica_status(engine, wanted: int = 2) -> dict[str, dict]:
    """Each replica's status (calls go to any replica: ask until every one has answered)."""
    seen = {}
    for _ in range(60):
        status = engine.handle.status.remote().result()
        seen[status["replica"]] = status
        if len(seen) == wanted:
            break
    return seen


def test_concurrent_requests_all_complete_on_both_replicas(engine, ui_registry):
    assert engine.slots == 2 and "2 replicas running" in engine.where()
    requests = [request(ui_registry, seed=seed) for seed in range(6)]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(engine.run, requests))
    assert [r.seed for r in results] == list(range(6))
    assert all(r.image.size == (256, 256) for r in results)
    assert len({r.served_by for r in results}) == 2  # both replicas served some


def test_same_seed_gives_the_same_bytes_as_in_process(engine, ui_registry, models_dir):
    # Each of the 2 replicas has half the CPUs, and as many OpenVINO threads. At another thread
    # count OpenVINO sums in another order, and in bf16 (a Zen 4) a few pixels differ by one
    # level: compare at the replicas' thread count.
    (threads,) = {s["threads"] for s in replica_status(engine).values()}
    assert threads == max(1, os.cpu_count() // 2)
    asked = request(ui_registry, seed=1234, steps=3)
    remote = engine.run(asked)
    local = LocalEngine(Registry(models_dir, cache=False, threads=threads)).run(asked)
    assert remote.served_by and not local.served_by
    assert remote.image.tobytes() == local.image.tobytes()


def test_a_batch_streams_previews_then_each_image_as_in_process(engine, ui_registry):
    def kinds(items):
        return [(type(i).__name__, i.index if isinstance(i, Preview) else i.seed) for i in items]

    batch = request(ui_registry, steps=2, images=2)
    items = list(engine.stream(batch, threading.Event()))
    assert kinds(items) == [("Preview", 0), ("Result", 7), ("Preview", 1), ("Result", 8)]
    assert kinds(items) == kinds(LocalEngine(ui_registry).stream(batch, threading.Event()))
    assert all(item.served_by for item in items)


def test_stop_ends_the_run_on_the_replica_and_it_serves_the_next(engine, ui_registry):
    long_batch = request(ui_registry, width=512, height=512, steps=4, images=4)  # ~5 s here
    stop, items = threading.Event(), []
    start = time.perf_counter()
    with pytest.raises(generate.Stopped):
        for item in engine.stream(long_batch, stop):
            items.append(item)
            stop.set()  # the user presses Stop once the first preview shows
    assert len(items) < 5 and time.perf_counter() - start < 5
    after = [engine.run(request(ui_registry, seed=s)) for s in range(4)]
    assert all(r.image.size == (256, 256) for r in after)


def test_a_replica_killed_mid_run_is_answered_and_the_next_requests_succeed(engine,
                                                                           ui_registry):
    long_batch = request(ui_registry, width=512, height=512, steps=4, images=4)
    items = engine.stream(long_batch, threading.Event())
    first = next(items)
    victim = ray.get_actor(f"SERVE_REPLICA::{APP}#{DEPLOYMENT}#{first.served_by}",
                           namespace="serve")
    ray.kill(victim, no_restart=False)
    with pytest.raises(WorkerLost, match="model worker running this request stopped"):
        list(items)
    results = [engine.run(request(ui_registry, seed=s)) for s in range(3)]
    assert all(r.image.size == (256, 256) for r in results)
    assert first.served_by not in {r.served_by for r in results}


def test_a_user_error_on_a_replica_keeps_its_message(engine, ui_registry):
    not_exported = request(ui_registry, model_id="sdxl-turbo", width=512, height=512)
    with pytest.raises(ModelNotAvailable) as local:
        LocalEngine(ui_registry).run(not_exported)
    with pytest.raises(ModelNotAvailable) as remote:
        engine.run(not_exported)
    assert str(remote.value) == str(local.value)  # the message only, not Ray's traceback


def test_multiplexing_sends_a_second_model_to_a_replica_within_its_budget(engine,
                                                                         ui_registry):
    int8 = [engine.run(request(ui_registry, seed=s, variant="int8")) for s in range(3)]
    assert all(r.image.size == (256, 256) for r in int8)
    statuses = replica_status(engine)
    held = [key for status in statuses.values() for key in status["loaded"]]
    assert ("tiny", "int8") in held
    for status in statuses.values():
        assert status["ram_in_use"] <= status["ram_budget"]
        assert len(status["loaded"]) <= 1  # the budget holds one tiny model


def test_the_comparison_runs_on_a_replica(engine, ui_registry):
    comparison = engine.compare(request(ui_registry, seed=5))
    assert [run.variant for run in comparison.runs] == ["fp16", "int8"]
    assert all(run.result.served_by for run in comparison.runs)
    assert comparison.psnr > 0
