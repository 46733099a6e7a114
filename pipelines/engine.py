"""Where generations run: the one seam between the UI and the models. The UI hands an engine
validated requests and gets back results (and previews); it never touches a loaded model.

LocalEngine runs them in this process, on the registry's models, one at a time (the run lock).
cluster.engine.RayEngine has the same methods and runs them on Ray Serve replicas."""

import threading
from collections.abc import Iterator

from pipelines import compare, generate, stream
from pipelines.registry import Registry
from pipelines.requests import Result, Text2Image


class LocalEngine:
    """Generations in this process. `registry` also answers what is exported and served (the
    UI reads it for its choices, whichever engine runs the generations)."""

    def __init__(self, registry: Registry):
        self.registry = registry

    @property
    def slots(self) -> int:
        """How many generations can run at once: one, the registry's run lock (two runs on one
        CPU only split its cores)."""
        return 1

    def where(self) -> str:
        """Where generations run, for the status line."""
        return "in this process"

    def load(self, model_id: str, variant: str, download_progress=None) -> None:
        """Load (download, compile) a model now rather than on its first request, so that the
        caller can show it. download_progress: a tqdm class for a download, if one runs."""
        self.registry.get(model_id, variant, download_progress=download_progress)

    def run(self, request: Text2Image, on_step: generate.OnStep | None = None) -> Result:
        """One image of a validated request (its first, for a batch: see stream)."""
        return generate.run(self.registry.get(request.model_id, request.variant), request,
                            on_step=on_step)

    def stream(self, request: Text2Image, stop: threading.Event,
               on_step: generate.OnStep | None = None) -> Iterator[stream.Preview | Result]:
        """Every image of a validated request, with previews: stream.stream on the model."""
        loaded = self.registry.get(request.model_id, request.variant)
        return stream.stream(loaded, request, on_step=on_step, stop=stop)

    def compare(self, request: Text2Image) -> compare.Comparison:
        """The request on the model's FP16 and INT8 variants (compare.compare)."""
        return compare.compare(self.registry, request)
