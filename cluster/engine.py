"""RayEngine: LocalEngine's methods, run on the model workers through a Serve DeploymentHandle.
The UI process keeps the Gradio queue and sends each generation to a replica that holds its
model (multiplexing); as many run at once as there are replicas."""

import threading
from typing import Iterator

import ray.exceptions
from ray import serve
from ray.serve.exceptions import RequestCancelledError

from cluster.worker import model_key
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


def unwrapped(e: ray.exceptions.RayTaskError) -> Exception:
    """The replica's own exception (a UserError keeps its message, without Ray's traceback)."""
    cause = e.cause
    return cause if isinstance(cause, Exception) else e


class RayEngine:
    """slots: replicas that serve (the UI lets that many generations run at once). cluster:
    how the status line names the cluster."""

    def __init__(self, registry: Registry, handle: serve.handle.DeploymentHandle, slots: int,
                 cluster: str):
        self.registry = registry  # what is exported: the UI's choices
        self.handle, self.slots, self.cluster = handle, slots, cluster

    def where(self) -> str:
        from cluster.start import running_replicas

        try:
            replicas = running_replicas()
        except Exception as e:  # noqa: BLE001 -- the status line says so; requests say more
            return f"on Ray Serve model workers, but {self.cluster} cannot be reached ({e})"
        return (f"on Ray Serve model workers ({replicas} replica{'s' * (replicas != 1)} "
                f"running, on {self.cluster})")

    def load(self, model_id: str, variant: str, download_progress=None) -> None:
        """Nothing here: the replica that runs the request loads the model (once)."""

    def _to(self, request: Text2Image, **options):
        return self.handle.options(multiplexed_model_id=model_key(request), **options)

    def run(self, request: Text2Image, on_step: generate.OnStep | None = None) -> Result:
        """One image, on a replica; a replica lost mid-run is retried once on another."""
        for attempt in (1, 2):
            try:
                return self._to(request).run.remote(request).result()
            except ray.exceptions.RayTaskError as e:
                raise unwrapped(e) from None
            except LOST as e:
                if attempt == 2:
                    raise lost(e) from None

    def stream(self, request: Text2Image, stop: threading.Event,
               on_step: generate.OnStep | None = None) -> Iterator[Preview | Result]:
        """Every image with its previews, as they come from the replica. Setting `stop`
        cancels the call: the replica ends the run at its next step, and this raises
        generate.Stopped. A lost replica is not retried here: the user has seen previews."""
        responses = self._to(request, stream=True).stream.remote(request)
        ended = threading.Event()
        threading.Thread(target=_cancel_on, args=(stop, ended, responses), daemon=True).start()
        step, complete = (0, request.steps), False
        try:
            for item in responses:
                if isinstance(item, Preview):
                    step = (item.step, item.steps)
                    if on_step:
                        on_step(*step)
                yield item
            complete = True
        except RequestCancelledError:
            raise generate.Stopped(*step) from None
        except ray.exceptions.RayTaskError as e:
            raise unwrapped(e) from None
        except LOST as e:
            raise lost(e) from None
        finally:
            ended.set()
            if not complete:  # the consumer went away early: the replica stops too
                responses.cancel()

    def compare(self, request: Text2Image) -> Comparison:
        try:
            return self._to(request).compare.remote(request).result()
        except ray.exceptions.RayTaskError as e:
            raise unwrapped(e) from None
        except LOST as e:
            raise lost(e) from None


def _cancel_on(stop: threading.Event, ended: threading.Event, responses) -> None:
    """Written by hand: a Serve response has no hook for a flag set on another thread (the
    Stop button's). Polls until the stream ends."""
    while not ended.is_set():
        if stop.wait(0.1):
            responses.cancel()
            return
