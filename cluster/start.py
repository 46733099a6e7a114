"""Connecting the app to Ray: a local cluster started here (`--ray local`) or a running one
joined (`--ray auto`, `--ray ADDRESS`), and the model workers deployed there, or found there
when they already are (`serve deploy cluster/serve.yaml`)."""

import os
import socket
from dataclasses import replace
from pathlib import Path

from pipelines.errors import UserError
from pipelines.registry import Registry
from pipelines.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Ray's shared-memory object store: requests and images are small (a 512² PNG-sized array).
OBJECT_STORE_BYTES = 256 * 2**20
# How long a cluster's address may take to answer: ray.init itself retries for minutes.
REACH_SECONDS = 5
YEAR = 365 * 24 * 3600
# Ray 2.60's `ray start` turns token authentication on; its clients must ask for it.
AUTH_HINT = (" A cluster started with `ray start` wants its token: set RAY_AUTH_MODE=token "
             "(the token in ~/.ray/auth_token, or RAY_AUTH_TOKEN).")


class ClusterUnavailable(UserError, RuntimeError):
    """Ray is not installed, or the cluster asked for cannot be reached."""


def connect(settings: Settings, registry: Registry, address: str, replicas: int = 1):
    """A RayEngine on the cluster `address` names ("local": one started here), with
    `replicas` model workers deployed there on these serving settings, or those found there
    when they are deployed already."""
    try:
        import ray  # only here: Ray is an optional dependency
    except ImportError:
        raise ClusterUnavailable("--ray needs Ray Serve: `pip install -r requirements-ray.txt`."
                                 ) from None
    from cluster.engine import RayEngine
    from cluster.worker import running_replicas

    local = start_ray(address, settings.verbose)
    running = running_replicas()
    handle = _app_handle() if running else deploy(settings.serving(), replicas, local)
    cluster = "a local Ray cluster" if local else f"the Ray cluster at {address}"
    return RayEngine(registry, handle, slots=max(running, replicas), cluster=cluster,
                     alive=answers(ray.get_runtime_context().gcs_address))


def start_ray(address: str, verbose: bool = False) -> bool:
    """Start a Ray cluster in this process (address "local"; returns True) or join one. Does
    nothing when this process is connected already (tests start their own)."""
    import ray

    local = address == "local"
    if ray.is_initialized():
        return local
    # The workers import pipelines/ and cluster/ from this checkout (on a cluster of several
    # machines, each has the checkout: see docs/ray.md).
    runtime_env = {"env_vars": {"PYTHONPATH": str(ROOT)}}
    try:
        if local:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False,
                     object_store_memory=OBJECT_STORE_BYTES, log_to_driver=verbose,
                     runtime_env=runtime_env)
        else:
            reachable(address)
            # Ray ends a driver whose cluster stays away for a minute: that would take the UI
            # down with it. Requests say the cluster cannot be reached instead (RayEngine).
            os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(YEAR))
            ray.init(address=address, log_to_driver=verbose, runtime_env=runtime_env)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.AuthenticationError) as e:
        raise ClusterUnavailable(
            f"No Ray cluster could be reached at {address!r} ({e}). Start one with `ray start "
            f"--head` (and `ray start --address HEAD:6379` on the other machines), or use "
            f"--ray local.{AUTH_HINT if os.environ.get('RAY_AUTH_MODE') != 'token' else ''}"
        ) from None
    return local


def answers(address: str):
    """A check that HOST:PORT answers now (what RayEngine watches its calls with)."""
    def alive() -> bool:
        try:
            reachable(address)
        except (ConnectionError, ValueError):
            return False
        return True
    return alive


def reachable(address: str) -> None:
    """Raise ConnectionError unless HOST:PORT (or ray://HOST:PORT) answers within
    REACH_SECONDS; "auto" is left to Ray, which finds this machine's cluster at once or not."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("give the cluster's address as HOST:PORT (the head's GCS port, 6379 "
                         "unless set), or auto")
    try:
        socket.create_connection((host, int(port)), timeout=REACH_SECONDS).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {host}:{port}: {e}") from None


def deploy(settings: Settings, replicas: int, local: bool):
    """Deploy `replicas` model workers, each with an equal share of the cluster's CPUs (its
    OpenVINO threads too); on one machine, each with an equal share of the RAM budget."""
    import ray
    from ray import serve

    from cluster.worker import APP, worker_app
    from pipelines.registry import default_ram_budget

    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)) // replicas)
    if local:
        budget = settings.ram_budget or default_ram_budget()
        settings = replace(settings, ram_budget_gb=budget / replicas / 2**30)
    serve.start(proxy_location="Disabled")  # the UI calls the workers by handle: no HTTP
    app = worker_app(settings, threads=cpus, num_replicas=replicas,
                     ray_actor_options={"num_cpus": cpus})
    return serve.run(app, name=APP, route_prefix=None)


def _app_handle():
    from ray import serve

    from cluster.worker import APP

    return serve.get_app_handle(APP)
