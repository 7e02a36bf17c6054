"""The container deployments (deploy/Dockerfile, deploy/docker/, deploy/helm-values.yaml) are
not run here (no Docker, no Kubernetes): these checks keep them in step with what is tested,
deploy/dagster.yaml and the settings."""

from __future__ import annotations

import re
import tomllib

import yaml

from marketo_assets.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"


def _yaml(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_the_docker_instance_is_the_tested_instance_with_one_container_per_run():
    tested, docker = _yaml("dagster.yaml"), _yaml("docker/dagster.yaml")
    launcher = docker.pop("run_launcher")
    tested.pop("run_launcher")
    assert docker == tested  # storage, queued run coordinator, pools, retries, monitoring
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    passed = set(launcher["config"]["env_vars"])
    # What a run container needs: the instance, Marketo, the warehouse and the ledger.
    needed = {"DAGSTER_PG_PASSWORD", "MARKETO_CLIENT_SECRET", "MARKETO_LEDGER", "PGPASSWORD"}
    assert needed <= passed
    compose = _yaml("docker/compose.yaml")
    assert compose["networks"]["marketo"]["name"] == launcher["config"]["network"]
    code = compose["services"]["code"]["environment"]
    assert code["MARKETO_LEDGER"] == code["MARKETO_WAREHOUSE"] == "postgres"
    assert code["DAGSTER_CURRENT_IMAGE"] == compose["services"]["code"]["image"]


def test_kubernetes_runs_share_no_volume_and_keep_the_ledger_in_postgres():
    values = _yaml("helm-values.yaml")
    deployments = values["dagster-user-deployments"]["deployments"]
    assert {d["name"] for d in deployments} == {"marketo-assets", "marketo-dbt"}
    for deployment in deployments:  # the raw exports and the dbt models' code location
        env = {e["name"]: e.get("value") for e in deployment["env"]}
        assert env["MARKETO_LEDGER"] == env["MARKETO_WAREHOUSE"] == "postgres"
        assert all("persistentVolumeClaim" not in v for v in deployment.get("volumes", []))
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"


def test_the_image_pins_the_run_launchers_to_the_locked_dagster():
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())
    versions = {p["name"]: p["version"] for p in lock["package"]}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pins = dict(re.findall(r"(dagster-(?:docker|k8s))==([\d.]+)", dockerfile))
    assert set(pins) == {"dagster-docker", "dagster-k8s"}
    assert set(pins.values()) == {versions["dagster-postgres"]}
    assert "uv sync --frozen --no-dev" in dockerfile
