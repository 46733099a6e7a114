"""RayEngine: LocalEngine's methods, run on the model workers through a Serve DeploymentHandle.
The UI process keeps the Gradio queue and sends each generation to a replica that holds its
model (multiplexing); as many run at once as there are replicas."""

import threading
import time
from collections.abc import Callable, Iterator

import ray.exceptions
from ray import serve
from ray.serve.exceptions import RequestCancelledError

from cluster.worker import model_key, running_replicas
from pipelines import generate
from pipelines.compare import Comparison
from pipelines.errors import UserError
from pipelines.registry import Registry
from pipelines.requests import Result, Text2Image
from pipelines.stream import Preview

# A replica that died (killed, out of memory) or a cluster that went away.
LOST = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
        ray.exceptions.RaySystemError, ray.exceptions.WorkerCrashedError,
        ray.exceptions.NodeDiedError)


class WorkerLost(UserError, RuntimeError):
    """The model worker running a request stopped, or the cluster cannot be reached."""


def lost(e: Exception) -> WorkerLost:
    return WorkerLost(
        f"The model worker running this request stopped ({type(e).__name__}: it may have run out "
        f"of memory, or the Ray cluster went away). Ray Serve restarts workers: try again in a "
        f"moment.")


class ClusterGone(WorkerLost):
    """The cluster stopped answering: no other replica to retry on."""


def unreachable(cluster: str) -> ClusterGone:
    return ClusterGone(f"{cluster[0].upper()}{cluster[1:]} cannot be reached, so this request "
                       f"was not served. Start the cluster again, then restart the app.")


def unwrapped(e: ray.exceptions.RayTaskError) -> Exception:
    """The replica's own exception (a UserError keeps its message, without Ray's traceback)."""
    cause = e.cause
    return cause if isinstance(cause, Exception) else e


class RayEngine:
    """slots: replicas that serve (the UI lets that many generations run at once). cluster:
    how messages name the cluster. alive: whether the cluster answers now (a Serve call waits
    for a replica for ever once the cluster is gone: each call is watched with it)."""

    def __init__(self, registry: Registry, handle: serve.handle.DeploymentHandle, slots: int,
                 cluster: str, alive: Callable[[], bool]):
        self.registry = registry  # what is exported: the UI's choices
        self.handle, self.slots, self.cluster, self.alive = handle, slots, cluster, alive

    def where(self) -> str:
        if not self.alive():
            return f"on Ray Serve model workers, but {self.cluster} cannot be reached"
        replicas = running_replicas()
        return (f"on Ray Serve model workers ({replicas} replica{'s' * (replicas != 1)} "
                f"running, on {self.cluster})")

    def load(self, model_id: str, variant: str, download_progress=None) -> None:
        """Nothing here: the replica that runs the request loads the model (once)."""

    def _call(self, method: str, request: Text2Image, stop: threading.Event | None = None,
              **options) -> "Watch":
        handle = self.handle.options(multiplexed_model_id=model_key(request), **options)
        return Watch(getattr(handle, method).remote(request), stop, self.alive)

    def run(self, request: Text2Image, on_step: generate.OnStep | None = None) -> Result:
        """One image, on a replica; a replica lost mid-run is retried once on another."""
        for attempt in (1, 2):
            try:
                return self._result(self._call("run", request))
            except ClusterGone:
                raise
            except WorkerLost:
                if attempt == 2:
                    raise

    def compare(self, request: Text2Image) -> Comparison:
        return self._result(self._call("compare", request))

    def _result(self, watch: "Watch"):
        try:
            return watch.response.result()
        except Exception as e:  # noqa: BLE001 -- each kind becomes what the user should see
            raise self._error(e, watch) from None
        finally:
            watch.end()

    def stream(self, request: Text2Image, stop: threading.Event,
               on_step: generate.OnStep | None = None) -> Iterator[Preview | Result]:
        """Every image with its previews, as they come from the replica. Setting `stop`
        cancels the call: the replica ends the run at its next step, and this raises
        generate.Stopped. A lost replica is not retried here: the user has seen previews."""
        watch = self._call("stream", request, stop, stream=True)
        step, complete = (0, request.steps), False
        try:
            for item in watch.response:
                if isinstance(item, Preview):
                    step = (item.step, item.steps)
                    if on_step:
                        on_step(*step)
                yield item
            complete = True
        except RequestCancelledError:
            if watch.cluster_lost:
                raise unreachable(self.cluster) from None
            raise generate.Stopped(*step) from None
        except Exception as e:  # noqa: BLE001 -- as in _result
            raise self._error(e, watch) from None
        finally:
            watch.end()
            if not complete:  # the consumer went away early: the replica stops too
                watch.response.cancel()

    def _error(self, e: Exception, watch: "Watch") -> Exception:
        if isinstance(e, RequestCancelledError) and watch.cluster_lost:
            return unreachable(self.cluster)
        if isinstance(e, ray.exceptions.RayTaskError):
            return unwrapped(e)
        if isinstance(e, LOST):
            return lost(e)
        return e


class Watch:
    """A Serve call, cancelled when its user presses Stop (`stop`) or when the cluster stops
    answering (`alive`). Written by hand: a Serve response has neither hook, and once the
    cluster is gone it waits for a replica for ever."""

    CHECK_SECONDS = 3.0

    def __init__(self, response, stop: threading.Event | None, alive: Callable[[], bool]):
        self.response, self.stop, self.alive = response, stop, alive
        self.cluster_lost = False
        self._ended = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def end(self) -> None:
        self._ended.set()

    def _watch(self) -> None:
        checked = time.monotonic()
        while not self._ended.wait(0.1):
            if self.stop is not None and self.stop.is_set():
                return self.response.cancel()
            if time.monotonic() - checked > self.CHECK_SECONDS:
                checked = time.monotonic()
                if not self.alive():
                    self.cluster_lost = True
                    return self.response.cancel()
