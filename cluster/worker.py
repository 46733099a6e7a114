"""The model worker: a Ray Serve deployment whose every replica runs today's engine (its own
registry, RAM budget, compiled-model cache, one run at a time) on the requests the UI sends.

Requests are routed by model and variant with Serve's model multiplexing, so a replica that
has a model loaded gets its requests. Only plain data crosses: the frozen request objects in,
Results and Previews (images, seeds, timings) out.

    serve run cluster/serve.yaml        # the workers alone, as a standard Serve application
"""

import asyncio
import threading
from dataclasses import dataclass

from ray import serve

from pipelines import compare, generate, stream
from pipelines.registry import Loaded, Registry, ram_estimate
from pipelines.requests import Result, Text2Image
from pipelines.settings import SERVING, Settings, from_flags

APP = "turbo-studio"  # the Serve application's name, which the UI looks for
DEPLOYMENT = "ModelWorker"


def model_key(request: Text2Image) -> str:
    """The multiplexed model id of a request: its model and variant."""
    return f"{request.model_id}/{request.variant}"


def running_replicas() -> int:
    """The model-worker replicas serving now (0: not deployed)."""
    app = serve.status().applications.get(APP)
    if app is None or DEPLOYMENT not in app.deployments:
        return 0
    return app.deployments[DEPLOYMENT].replica_states.get("RUNNING", 0)


@dataclass
class Held:
    """A model a replica holds for Serve's multiplexing. Serve calls __del__ when it drops the
    model from a full replica (least recently used first): the registry frees it then too."""
    registry: Registry
    loaded: Loaded

    def __del__(self):
        self.registry.unload(self.loaded.spec.id, self.loaded.variant, self.loaded)


def models_per_replica(registry: Registry) -> int:
    """How many models a replica keeps: as many of the largest exported one as its RAM budget
    holds (at least one). Serve routes a model's requests to the replicas that hold it."""
    sizes = [ram_estimate(registry.location(m, v)) for m, v in registry.available_pairs()]
    return max(1, registry.ram_budget // max(sizes)) if sizes and max(sizes) else 1


@serve.deployment(name=DEPLOYMENT, max_ongoing_requests=1)
class ModelWorker:
    """max_ongoing_requests=1: one generation saturates the replica's CPUs; Serve queues the
    others for the next free replica."""

    def __init__(self, settings: Settings, threads: int | None = None):
        self.registry = Registry.from_settings(settings, threads=threads)
        self.name = serve.get_replica_context().replica_tag

        # Made here, not as a method: how many models a replica keeps follows its RAM budget.
        @serve.multiplexed(max_num_models_per_replica=models_per_replica(self.registry))
        async def model(key: str) -> Held:
            model_id, variant = key.rsplit("/", 1)
            loaded = await asyncio.to_thread(self.registry.get, model_id, variant)
            return Held(self.registry, loaded)

        self._model = model

    async def _loaded(self, request: Text2Image) -> Loaded:
        return (await self._model(model_key(request))).loaded

    async def run(self, request: Text2Image) -> Result:
        """One image of a validated request (generate.run)."""
        loaded = await self._loaded(request)
        return self._signed(await asyncio.to_thread(generate.run, loaded, request))

    async def stream(self, request: Text2Image):
        """Every image of a validated request with its previews (stream.stream). Cancelling
        the call (the user's Stop, or the UI going away) ends the run at its next step."""
        loaded = await self._loaded(request)
        stop, items = threading.Event(), asyncio.Queue()
        loop = asyncio.get_running_loop()
        put = lambda item: loop.call_soon_threadsafe(items.put_nowait, item)  # noqa: E731

        def pump():  # stream.stream blocks: iterate it on a thread of its own
            try:
                for item in stream.stream(loaded, request, stop=stop):
                    put(item)
                put(None)
            except Exception as e:  # noqa: BLE001 -- raised to the caller below
                put(e)

        threading.Thread(target=pump, daemon=True).start()
        try:
            while (item := await items.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield self._signed(item)
        finally:
            stop.set()  # the run ends at its next step (the pump then too), freeing the model

    async def compare(self, request: Text2Image) -> compare.Comparison:
        """The request on the model's FP16 and INT8 variants (compare.compare)."""
        comparison = await asyncio.to_thread(compare.compare, self.registry, request)
        for run in comparison.runs:
            self._signed(run.result)
        return comparison

    def status(self) -> dict:
        """This replica: its name, its OpenVINO threads, the models it holds (least recently
        used first) and what they take of its RAM budget."""
        return {"replica": self.name, "threads": self.registry.threads,
                "loaded": self.registry.loaded(),
                "ram_budget": self.registry.ram_budget, "ram_in_use": self.registry.ram_in_use()}

    def _signed(self, item):  # a Result or a Preview
        item.served_by = self.name
        return item


def worker_app(settings: Settings, threads: int | None = None, **options):
    """The bound application; `options` are Serve deployment options (num_replicas,
    autoscaling_config, ray_actor_options)."""
    return ModelWorker.options(**options).bind(settings, threads)


def app(args: dict):
    """The application for a Serve config (cluster/serve.yaml): `args` are the serving settings
    by name (models_dir, precision, ram_budget_gb, ...; a replica's own), plus `threads`; the
    TURBO_* variables apply to those not given, as for the app."""
    args = dict(args)
    threads = args.pop("threads", None)
    unknown = set(args) - set(SERVING)
    if unknown:
        raise ValueError(f"Unknown worker settings {sorted(unknown)}; they are: {SERVING}.")
    settings = from_flags(args, names=SERVING)
    return worker_app(settings, int(threads) if threads else None)
