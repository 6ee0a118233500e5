"""The Kubernetes path on paper: deploy/helm/values.yaml for Dagster's official Helm chart.

No cluster is started here (there is none; see docs/scale-out.md). What runs for real: the values
file is parsed, the code server's arguments go through ``dagster api grpc``'s own option parser,
the module they name imports, and the ``WINDPIPE_*`` variables validate in the settings model and
cover every variable the code location reads, as compose.yaml and the Dockerfile do.
"""

import importlib.metadata
import importlib.util
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.deploy.test_compose_config import (
    DAGSTER_YAML,
    ROOT,
    WINDPIPE_VARIABLE,
    Dockerfile,
    databases_created_by_init_sql,
    parse_dockerfile,
    resolved_config,
    settings_env_names,
    yaml_strings,
)
from tests.deploy.test_compose_config import DOCKERFILE as DOCKERFILE_PATH
from windpipe.orchestration.instance import DEFINITIONS_MODULE, dagster_environment
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
    "retention", "additionalInstanceConfig",
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
    assert user["enabled"] and user["enableSubchart"]
    deployments: list[dict[str, Any]] = user["deployments"]
    assert len(deployments) == 1, "one code location, windpipe's"
    return deployments[0]


@pytest.fixture(scope="module")
def env_entries(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The deployment's env, by name (a list of Kubernetes EnvVar objects)."""
    entries = deployment["env"]
    assert isinstance(entries, list), "env as a list of EnvVar, so Secrets can be referenced"
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"a variable set twice: {names}"
    return {e["name"]: e for e in entries}


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


def test_every_windpipe_variable_is_a_setting(env_entries: dict[str, dict[str, Any]]) -> None:
    """Like compose.yaml and the Dockerfile: only variables of windpipe.settings.Settings."""
    used = {m for text in yaml_strings(yaml.safe_load(VALUES_FILE.read_text()))
            for m in WINDPIPE_VARIABLE.findall(text)}  # fmt: skip
    assert set(env_entries) <= used
    unknown = used - settings_env_names()
    assert not unknown, f"not fields of windpipe.settings.Settings: {sorted(unknown)}"


def test_the_code_location_and_its_runs_get_every_variable_they_read(
    env_entries: dict[str, dict[str, Any]], values: dict[str, Any], deployment: dict[str, Any]
) -> None:
    """What `windpipe dagster ...` exports to Dagster's processes, and every EnvVar of the
    definitions, is set on the code server; the K8sRunLauncher hands it on to each run's pod."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        config=Path("/etc/windpipe/windpipe.toml"),
        partitions_start=date(2026, 1, 1),
    )
    exported = dagster_environment(
        settings, target_url=SECRET_EXAMPLES["WINDPIPE_TARGET_DB_URL"], home=Path("/x"), base={}
    )
    needed = {name for name in exported if name.startswith("WINDPIPE_")}
    for source in ORCHESTRATION.rglob("*.py"):
        needed |= set(re.findall(r"EnvVar\(\s*[\"'](WINDPIPE_\w+)[\"']", source.read_text()))
    missing = needed - set(env_entries)
    assert not missing, f"the code location reads variables the values do not set: {missing}"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert "k8sRunLauncher" in values["runLauncher"]["config"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"], "runs would lack the variables"


def test_secrets_come_from_kubernetes_secrets(env_entries: dict[str, dict[str, Any]]) -> None:
    secret_names = [name for name in env_entries if SECRET.search(name)]
    assert "WINDPIPE_TARGET_DB_URL" in secret_names
    for name in secret_names:
        entry = env_entries[name]
        assert "value" not in entry, f"{name} would sit in the values file in clear"
        assert entry["valueFrom"]["secretKeyRef"]["key"] == name


def pod_environment(
    env_entries: dict[str, dict[str, Any]], dockerfile: Dockerfile
) -> dict[str, str]:
    """WINDPIPE_* of a code-server pod: the image's ENV, then the values (Secrets stood in for)."""
    env = {k: v for k, v in dockerfile.final.env.items() if k.startswith("WINDPIPE_")}
    for name, entry in env_entries.items():
        env[name] = entry["value"] if "value" in entry else SECRET_EXAMPLES[name]
    return env


def test_pod_settings_validate_and_point_at_cluster_services(
    env_entries: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = pod_environment(env_entries, parse_dockerfile(DOCKERFILE_PATH.read_text()))
    for name in [n for n in os.environ if n.startswith("WINDPIPE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The fleet's file comes from a ConfigMap in the cluster: here, an empty stand-in.
    assert env["WINDPIPE_CONFIG"].startswith("/etc/windpipe/")
    fleet = tmp_path / "windpipe.toml"
    fleet.write_text("")
    monkeypatch.setenv("WINDPIPE_CONFIG", str(fleet))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert make_url(SECRET_EXAMPLES["WINDPIPE_TARGET_DB_URL"]).database == "windpipe_target"
    api = make_url(settings.base_api_url.replace("http://", "postgresql://", 1))
    assert api.host and api.host.endswith(".svc.cluster.local"), "the API's Service, in-cluster"
    assert settings.partitions_start is not None, "set: DAGSTER_HOME is read-only in the pods"
    assert settings.data_dir.is_absolute()


def test_dagster_storage_is_an_external_postgresql(values: dict[str, Any]) -> None:
    postgres = values["postgresql"]
    assert postgres["enabled"] is False, "the chart's bundled PostgreSQL is off"
    assert postgres["postgresqlHost"]
    assert postgres["postgresqlDatabase"] in databases_created_by_init_sql()
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]


def test_run_queue_limits_the_same_tags_as_the_containers(values: dict[str, Any]) -> None:
    """The run queue limits the tags docker/dagster/dagster.yaml limits (values may differ)."""
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] >= 1
    helm_tags = {limit["key"] for limit in queued.get("tagConcurrencyLimits") or []}
    runs = yaml.safe_load(DAGSTER_YAML.read_text()).get("concurrency", {}).get("runs", {})
    compose_tags = {limit["key"] for limit in runs.get("tag_concurrency_limits") or []}
    assert helm_tags == compose_tags


def test_scale_out_doc_points_at_the_values_and_says_what_was_tested() -> None:
    doc = SCALE_OUT_DOC.read_text()
    assert str(VALUES_FILE.relative_to(ROOT)) in doc
    assert "no Kubernetes cluster" in doc
