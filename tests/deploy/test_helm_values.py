"""deploy/helm/values.yaml for Dagster's official Helm chart, which is not shipped offline.

No cluster is started here (there is none; see docs/scale-out.md). What runs for real: the values
file is parsed, the code server's arguments go through ``dagster api grpc``'s own option parser,
the module they name imports, the run queue's limits validate in the settings model. The code
location's pods, env and Secrets come from windpipe's own chart (test_helm_chart.py); the Job a
run gets is built by dagster-k8s itself (test_k8s_run_job.py).
"""

import importlib.metadata
import importlib.util
import re
from typing import Any

import pytest
import yaml

from tests.deploy.test_compose_config import (
    DAGSTER_YAML,
    ROOT,
    Dockerfile,
    databases_created_by_init_sql,
    parse_dockerfile,
    resolved_config,
)
from tests.deploy.test_compose_config import DOCKERFILE as DOCKERFILE_PATH
from windpipe.orchestration.instance import DEFINITIONS_MODULE, ETL_RUN_TAG
from windpipe.settings import Settings

VALUES_FILE = ROOT / "deploy" / "helm" / "values.yaml"
SCALE_OUT_DOC = ROOT / "docs" / "scale-out.md"
ORCHESTRATION = ROOT / "src" / "windpipe" / "orchestration"

#: Top-level keys of the chart's values (values.schema.json of the dagster chart, 1.x).
CHART_KEYS = {
    "global", "dagsterWebserver", "dagster-user-deployments", "postgresql",
    "generatePostgresqlPasswordSecret", "generateCeleryConfigSecret", "rabbitmq", "redis",
    "flower", "ingress", "imagePullSecrets", "computeLogManager", "scheduler", "runLauncher",
    "pythonLogs", "dagsterDaemon", "busybox", "migrate", "telemetry", "serviceAccount",
    "retention", "additionalInstanceConfig", "concurrency",
}  # fmt: skip

#: Variables that carry passwords or keys: never a plain value in the file, always a Secret.
SECRET = re.compile(r"_DB_URL$|PASSWORD|^WINDPIPE_API_KEY$")

#: Stand-ins for the values the Secrets hold, to validate the settings a pod ends up with.
SECRET_EXAMPLES = {
    "WINDPIPE_TARGET_DB_URL": "postgresql+psycopg://windpipe:pw@postgres:5432/windpipe_target",
    "WINDPIPE_SOURCE_DB_URL": "postgresql+psycopg://windpipe:pw@postgres:5432/windpipe_source",
    "WINDPIPE_API_KEY": "",
}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(VALUES_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def deployment(values: dict[str, Any]) -> dict[str, Any]:
    """The one user-code deployment: windpipe's code location."""
    user = values["dagster-user-deployments"]
    assert user["enabled"] and not user["enableSubchart"], "deploy/helm/windpipe deploys it"
    deployments: list[dict[str, Any]] = user["deployments"]
    assert len(deployments) == 1, "one code location, windpipe's"
    return deployments[0]


def test_values_use_only_keys_of_the_chart(values: dict[str, Any]) -> None:
    unknown = set(values) - CHART_KEYS
    assert not unknown, f"not values of Dagster's Helm chart: {sorted(unknown)}"


def test_image_is_the_one_compose_builds(
    deployment: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """windpipe:local, the image every windpipe service in compose.yaml runs (Dockerfile)."""
    empty = tmp_path_factory.mktemp("helm") / "empty.env"
    empty.write_text("")
    services = resolved_config(empty)["services"]
    images = {svc["image"] for svc in services.values() if svc.get("build")}
    assert len(images) == 1, images
    image = deployment["image"]
    assert f"{image['repository']}:{image['tag']}" == images.pop()
    assert image["pullPolicy"] in ("IfNotPresent", "Always", "Never")
    assert f"-t {image['repository']}:{image['tag']}" in DOCKERFILE_PATH.read_text()


def test_the_image_runs_the_dagster_command() -> None:
    """The chart starts `dagster api grpc ...`: `dagster` is on the image's PATH, from dagster."""
    dockerfile: Dockerfile = parse_dockerfile(DOCKERFILE_PATH.read_text())
    path = dockerfile.final.env["PATH"].split(":")
    assert path[0] == "/app/.venv/bin", "the image's venv first on PATH"
    scripts = importlib.metadata.distribution("dagster").entry_points
    assert any(ep.group == "console_scripts" and ep.name == "dagster" for ep in scripts)


def test_code_server_arguments_parse_and_name_the_definitions(deployment: dict[str, Any]) -> None:
    """What the chart runs, `dagster api grpc -h 0.0.0.0 -p PORT ARGS`, through Dagster's parser."""
    from dagster._cli.api import grpc_command

    args = deployment["dagsterApiGrpcArgs"]
    assert not {"-h", "--host", "-p", "--port"} & set(args), "the chart sets host and port"
    argv = ["-h", "0.0.0.0", "-p", str(deployment["port"]), *args]
    params = grpc_command.make_context("grpc", argv).params
    module = params["module_name"]
    assert module == DEFINITIONS_MODULE, "the module `windpipe dagster ...` loads (-m)"
    assert importlib.util.find_spec(module) is not None


def test_dagster_storage_is_an_external_postgresql(values: dict[str, Any]) -> None:
    postgres = values["postgresql"]
    assert postgres["enabled"] is False, "the chart's bundled PostgreSQL is off"
    assert postgres["postgresqlHost"]
    assert postgres["postgresqlDatabase"] in databases_created_by_init_sql()
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]


def test_run_queue_limits_the_same_tags_as_the_containers(values: dict[str, Any]) -> None:
    """The run queue limits the tags and the pool docker/dagster/dagster.yaml limits (values may
    differ)."""
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    assert not coordinator["config"]["queuedRunCoordinator"], "limits go in `concurrency`"
    concurrency = values["concurrency"]
    assert concurrency["enabled"]
    runs, pools = concurrency["runs"], concurrency["pools"]
    assert runs["maxConcurrentRuns"] >= 1
    helm_tags = {limit["key"] for limit in runs.get("tagConcurrencyLimits") or []}
    local = yaml.safe_load(DAGSTER_YAML.read_text()).get("concurrency", {})
    compose_tags = {limit["key"] for limit in local.get("runs", {}).get("tag_concurrency_limits")}
    assert helm_tags == compose_tags == {ETL_RUN_TAG}
    assert pools["granularity"] == local["pools"]["granularity"] == "run"
    # The limits are the settings' on one machine: within the bounds the settings model accepts.
    etl = next(limit["limit"] for limit in runs["tagConcurrencyLimits"])
    Settings(  # type: ignore[call-arg]
        _env_file=None,
        dagster_max_concurrent_runs=runs["maxConcurrentRuns"],
        dagster_etl_runs=etl,
        dagster_pool_limit=pools["defaultLimit"],
    )
    assert etl <= runs["maxConcurrentRuns"]
    assert values["dagsterDaemon"]["runRetries"]["enabled"]


def _instance_concurrency(values: dict[str, Any]) -> dict[str, Any]:
    """``concurrency`` of the dagster.yaml the chart writes from ``values`` (its instance
    ConfigMap: each key of the values' ``concurrency`` in the instance's spelling)."""
    runs, pools = values["concurrency"]["runs"], values["concurrency"]["pools"]
    return {
        "runs": {
            "max_concurrent_runs": runs["maxConcurrentRuns"],
            "tag_concurrency_limits": runs["tagConcurrencyLimits"],
        },
        "pools": {"default_limit": pools["defaultLimit"], "granularity": pools["granularity"]},
    }


QUEUED = {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}


def test_dagster_accepts_the_instance_the_values_make(
    values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The run queue and the pool, as the chart's instance ConfigMap holds them, opened by
    Dagster itself; the same limits in the coordinator's config beside a pool are refused, which
    is why the values keep them in `concurrency`."""
    from dagster import DagsterInstance
    from dagster._core.errors import DagsterInvalidConfigError

    home = tmp_path_factory.mktemp("dagster-home")
    concurrency = _instance_concurrency(values)
    instance_yaml = {"run_coordinator": QUEUED, "concurrency": concurrency}
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
    with DagsterInstance.from_config(str(home)) as instance:
        config = instance.get_concurrency_config()
        queue = config.run_queue_config
        assert queue is not None
        assert queue.max_concurrent_runs == values["concurrency"]["runs"]["maxConcurrentRuns"]
        assert queue.tag_concurrency_limits == values["concurrency"]["runs"]["tagConcurrencyLimits"]
        assert (
            config.pool_config.default_pool_limit == values["concurrency"]["pools"]["defaultLimit"]
        )

    limits_in_the_coordinator = {
        "run_coordinator": {**QUEUED, "config": {"max_concurrent_runs": 4}},
        "concurrency": {"pools": concurrency["pools"]},
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(limits_in_the_coordinator))
    with pytest.raises(DagsterInvalidConfigError, match="max_concurrent_runs"):
        DagsterInstance.from_config(str(home))


def test_scale_out_doc_points_at_the_values_and_says_what_was_tested() -> None:
    doc = SCALE_OUT_DOC.read_text()
    assert str(VALUES_FILE.relative_to(ROOT)) in doc
    assert "no Kubernetes cluster" in doc
