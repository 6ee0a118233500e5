"""The Kubernetes Job a windpipe run gets, built by Dagster's own K8sRunLauncher (dagster-k8s)
from Dagster's values and the container context of windpipe's chart, sent to a recording batch
API instead of a cluster (as dagster-k8s's own launcher tests do), then validated against the
Kubernetes API's schemas."""

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from dagster import AssetKey
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.launcher import LaunchRunContext
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.test_utils import create_run_for_test, instance_for_test
from dagster_k8s import K8sRunLauncher
from kubernetes.client import ApiClient

from tests.deploy.helm import (
    DAGSTER_VALUES,
    NAMESPACE,
    chart_values,
    env_of,
    find,
    pod_spec,
    render,
    validate,
)
from tests.deploy.test_compose_config import DOCKERFILE, parse_dockerfile
from windpipe.orchestration.instance import DEFINITIONS_MODULE

IMAGE_PYTHON = parse_dockerfile(DOCKERFILE.read_text()).final.env["PATH"].split(":")[0] + "/python"
#: What Dagster's chart puts in its instance's run launcher besides the values' k8sRunLauncher
#: block (its defaults for a release named `dagster`).
CHART_LAUNCHER_DEFAULTS = {
    "service_account_name": "dagster",
    "instance_config_map": "dagster-instance",
    "dagster_home": "/opt/dagster/dagster_home",
    "job_namespace": NAMESPACE,
}
#: k8sRunLauncher keys of the values -> K8sRunLauncher's arguments.
LAUNCHER_KEYS = {
    "imagePullPolicy": "image_pull_policy",
    "envConfigMaps": "env_config_maps",
    "envSecrets": "env_secrets",
    "envVars": "env_vars",
    "volumeMounts": "volume_mounts",
    "volumes": "volumes",
    "resources": "resources",
    "runK8sConfig": "run_k8s_config",
}
RUN_K8S_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig naming a cluster nobody reaches: the batch API is the recorder."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "none", "user": {"token": "unused"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        )
    )
    return path


def launcher_from_values(kubeconfig: Path, batch_api: mock.MagicMock) -> K8sRunLauncher:
    values = yaml.safe_load(DAGSTER_VALUES.read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    block = dict(values["runLauncher"]["config"]["k8sRunLauncher"])
    assert block.pop("loadInclusterConfig") is True, "in the cluster: the pod's service account"
    unknown = set(block) - set(LAUNCHER_KEYS)
    assert not unknown, f"keys this test does not hand to K8sRunLauncher: {unknown}"
    kwargs = {LAUNCHER_KEYS[k]: v for k, v in block.items()}
    if "run_k8s_config" in kwargs:
        kwargs["run_k8s_config"] = {RUN_K8S_KEYS[k]: v for k, v in kwargs["run_k8s_config"].items()}
    return K8sRunLauncher(
        **CHART_LAUNCHER_DEFAULTS,
        postgres_password_secret=values["global"]["postgresqlSecretName"],
        load_incluster_config=False,
        kubeconfig_file=str(kubeconfig),
        k8s_client_batch_api=batch_api,
        **kwargs,
    )


@pytest.fixture
def run_job(kubeconfig: Path) -> dict[str, Any]:
    """The Job the launcher creates for a catch-up run of WTG01 over two days, as JSON."""
    from windpipe.orchestration.defs.sensors import range_request

    code = find(render(), "Deployment", "windpipe-code")
    env = env_of(pod_spec(code)["containers"][0])
    origin = JobPythonOrigin(
        "windpipe_etl",
        RepositoryPythonOrigin(
            # The code server reports its own interpreter: the image's venv (first on its PATH).
            executable_path=IMAGE_PYTHON,
            code_pointer=ModuleCodePointer(DEFINITIONS_MODULE, "defs", None),
            container_image=env["DAGSTER_CONTAINER_IMAGE"]["value"],
            container_context=json.loads(env["DAGSTER_CONTAINER_CONTEXT"]["value"]),
        ),
    )
    request = range_request(
        date(2026, 1, 5),
        date(2026, 1, 6),
        now=datetime(2026, 1, 7, tzinfo=UTC),
        assets=[AssetKey(["aggregates_10min", "WTG01"])],
    )
    batch_api = mock.MagicMock()
    launcher = launcher_from_values(kubeconfig, batch_api)
    with instance_for_test() as instance:
        run = create_run_for_test(
            instance, job_name="windpipe_etl", job_code_origin=origin, tags=request.tags
        )
        launcher.register_instance(instance)
        launcher.launch_run(LaunchRunContext(run, workspace=None))
    (call,) = [c for c in batch_api.method_calls if c[0] == "create_namespaced_job"]
    assert call.kwargs["namespace"] == NAMESPACE
    job: dict[str, Any] = ApiClient().sanitize_for_serialization(call.kwargs["body"])
    return job


def test_the_run_job_validates_against_the_kubernetes_api(run_job: dict[str, Any]) -> None:
    validate(run_job)


def test_the_run_job_runs_the_code_locations_image_and_dagsters_command(
    run_job: dict[str, Any],
) -> None:
    (container,) = pod_spec(run_job)["containers"]
    image = chart_values()["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
    assert container["args"][:5] == [IMAGE_PYTHON, "-m", "dagster", "api", "execute_run"]
    assert container["resources"] == chart_values()["runs"]["resources"]
    assert run_job["spec"]["backoffLimit"] == 0, "retries are Dagster's (runRetries)"


def test_the_run_gets_its_settings_and_secrets_by_reference(run_job: dict[str, Any]) -> None:
    (container,) = pod_spec(run_job)["containers"]
    env = env_of(container)
    for name in ("WINDPIPE_TARGET_DB_URL", "WINDPIPE_API_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {
            "name": chart_values()["secretName"],
            "key": name,
        }
    assert (
        env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
        == (yaml.safe_load(DAGSTER_VALUES.read_text())["global"]["postgresqlSecretName"])
    )
    assert env["WINDPIPE_PARTITIONS_START"]["value"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/etc/windpipe", "/tmp", "/var/lib/windpipe"} <= mounts


def test_the_run_pod_is_restricted(run_job: dict[str, Any]) -> None:
    spec = pod_spec(run_job)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_the_run_is_labelled_with_its_turbine_and_days(run_job: dict[str, Any]) -> None:
    for labels in (
        run_job["metadata"]["labels"],
        run_job["spec"]["template"]["metadata"]["labels"],
    ):
        assert labels["windpipe.io/turbine"] == "WTG01"
        assert labels["windpipe.io/first-day"] == "2026-01-05"
        assert labels["windpipe.io/last-day"] == "2026-01-06"
        assert labels["dagster/job"] == "windpipe_etl"
