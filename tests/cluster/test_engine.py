"""RayEngine's own logic, on a stand-in for a Serve handle (no cluster): a call is cancelled
when the cluster stops answering or its user presses Stop, and each ending becomes what the
user should see. (Checked by hand on a real cluster stopped under a running app: requests
answered ClusterGone within seconds and the app stayed up.)"""

import threading
from types import SimpleNamespace

import pytest

pytest.importorskip("ray")
from ray.serve.exceptions import RequestCancelledError  # noqa: E402

from cluster.engine import ClusterGone, RayEngine, Watch  # noqa: E402
from pipelines import generate  # noqa: E402
from pipelines.requests import Text2Image  # noqa: E402

REQUEST = Text2Image(prompt="a fox", model_id="tiny", variant="fp16", seed=1, steps=2)


class Pending:
    """A Serve response that never comes (a cluster gone, or a long run), until cancelled."""

    def __init__(self):
        self.cancelled = threading.Event()

    def cancel(self):
        self.cancelled.set()

    def result(self):
        if not self.cancelled.wait(10):
            raise AssertionError("never cancelled: the caller would wait for ever")
        raise RequestCancelledError("cancelled")

    def __iter__(self):
        self.result()
        yield from ()


class Handle:
    def __init__(self):
        self.calls = []

    def options(self, **options):
        return SimpleNamespace(**{m: SimpleNamespace(remote=self._remote(m, options))
                                  for m in ("run", "stream", "compare")})

    def _remote(self, method, options):
        def remote(request):
            self.calls.append((method, options["multiplexed_model_id"]))
            return Pending()
        return remote


@pytest.fixture
def quick_checks(monkeypatch):
    monkeypatch.setattr(Watch, "CHECK_SECONDS", 0.2)


def engine(alive: bool) -> tuple[RayEngine, Handle]:
    handle = Handle()
    return RayEngine(None, handle, slots=2, cluster="the Ray cluster at h:1",
                     alive=lambda: alive), handle


def test_a_cluster_gone_fails_each_call_with_a_message_not_a_hang(quick_checks):
    gone, handle = engine(alive=False)
    with pytest.raises(ClusterGone, match="The Ray cluster at h:1 cannot be reached"):
        gone.run(REQUEST)
    with pytest.raises(ClusterGone):
        list(gone.stream(REQUEST, threading.Event()))
    with pytest.raises(ClusterGone):
        gone.compare(REQUEST)
    # Routed by model and variant; a gone cluster is not retried (no replica to retry on).
    assert handle.calls == [("run", "tiny/fp16"), ("stream", "tiny/fp16"),
                            ("compare", "tiny/fp16")]
    assert "cannot be reached" in gone.where()


def test_stop_cancels_a_streaming_call(quick_checks):
    up, _ = engine(alive=True)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(generate.Stopped, match="Stopped after 0 of 2 steps"):
        list(up.stream(REQUEST, stop))
