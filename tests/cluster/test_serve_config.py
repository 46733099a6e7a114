"""The Serve config in the repo (and the KubeRay manifest's copy of it) is one Serve accepts,
names the application the UI looks for, and builds the workers with the settings it gives;
--ray and --replicas are checked like every other setting."""

from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")
from ray.serve.schema import ServeDeploySchema  # noqa: E402

from cluster.worker import APP, DEPLOYMENT, ModelWorker, app  # noqa: E402
from pipelines.settings import InvalidSetting, from_flags  # noqa: E402
from ui.app_settings import AppSettings  # noqa: E402

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


def serve_configs() -> dict[str, dict]:
    kuberay = yaml.safe_load((CLUSTER / "kuberay.yaml").read_text())
    return {"serve.yaml": yaml.safe_load((CLUSTER / "serve.yaml").read_text()),
            "kuberay.yaml": yaml.safe_load(kuberay["spec"]["serveConfigV2"])}


@pytest.mark.parametrize("name", ["serve.yaml", "kuberay.yaml"])
def test_the_serve_config_is_valid_and_sized_per_replica(name):
    config = ServeDeploySchema.model_validate(serve_configs()[name])
    (application,) = config.applications
    assert application.name == APP and application.import_path == "cluster.worker:app"
    (deployment,) = application.deployments
    assert deployment.name == DEPLOYMENT and deployment.max_ongoing_requests == 1
    assert deployment.autoscaling_config["target_ongoing_requests"] == 1
    actor = deployment.ray_actor_options
    assert actor.num_cpus == application.args["threads"]  # OpenVINO uses what Ray gives
    assert actor.memory > application.args["ram_budget_gb"] * 2**30  # budget + the process


def test_the_config_builds_workers_with_its_settings(tmp_path):
    built = app({"models_dir": str(tmp_path), "ram_budget_gb": 3, "threads": 2})
    settings, threads = built._bound_deployment.init_args
    assert settings.models_dir == tmp_path and settings.ram_budget_gb == 3 and threads == 2
    assert built._bound_deployment.name == ModelWorker.name
    with pytest.raises(ValueError, match="Unknown worker settings \\['port'\\]"):
        app({"port": 80})
    with pytest.raises(InvalidSetting, match="ram-budget-gb"):
        app({"ram_budget_gb": 0})


def test_replicas_need_ray_and_are_at_least_one():
    given = from_flags({"ray": "local", "replicas": "3"}, kind=AppSettings)
    assert given == AppSettings(ray="local", replicas=3)
    from_environment = from_flags({"ray": None, "replicas": None}, kind=AppSettings,
                                  environ={"TURBO_RAY": "auto", "TURBO_REPLICAS": "2"})
    assert (from_environment.ray, from_environment.replicas) == ("auto", 2)
    with pytest.raises(InvalidSetting, match="give --ray local"):
        AppSettings(replicas=2).check()
    with pytest.raises(InvalidSetting, match="at least 1"):
        AppSettings(ray="local", replicas=0).check()
