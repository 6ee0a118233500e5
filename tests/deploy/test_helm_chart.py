"""windpipe's own chart (deploy/helm/windpipe), rendered and linted by Helm's Go SDK and every
manifest validated against the Kubernetes API's schemas, offline; then what a cluster would
refuse or get wrong first: images, variables, Secrets, probes, the pod security context."""

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import pytest
import yaml
from sqlalchemy.engine import URL

from tests.conftest import serve
from tests.deploy.helm import (
    CHART,
    DAGSTER_VALUES,
    NAMESPACE,
    chart_values,
    env_of,
    find,
    pod_spec,
    render,
    validate,
    workloads,
)
from tests.deploy.test_compose_config import (
    DOCKERFILE,
    parse_dockerfile,
    resolve_windpipe_command,
    settings_env_names,
)
from windpipe.orchestration.instance import DEFINITIONS_MODULE, dagster_environment
from windpipe.settings import Settings

ORCHESTRATION = Path(__file__).resolve().parents[2] / "src" / "windpipe" / "orchestration"
#: Variables that carry passwords, keys or URLs with passwords: always from the Secret.
SECRET = re.compile(r"_DB_URL$|PASSWORD|^WINDPIPE_API_KEY(_HASHES)?$")
#: What the Secret would hold, to validate the settings a pod ends up with.
SECRET_EXAMPLES = {
    "WINDPIPE_SOURCE_DB_URL": "postgresql+psycopg://windpipe:pw@postgres:5432/windpipe_source",
    "WINDPIPE_TARGET_DB_URL": "postgresql+psycopg://windpipe:pw@postgres:5432/windpipe_target",
    "WINDPIPE_API_SOURCE_DB_URL": "postgresql+psycopg://windpipe_reader:r@postgres:5432/windpipe_source",
    "WINDPIPE_API_TARGET_DB_URL": "postgresql+psycopg://windpipe_reader:r@postgres:5432/windpipe_target",
    "WINDPIPE_API_DB_PASSWORD": "r",
    "WINDPIPE_API_KEY_HASHES": "",
    "WINDPIPE_API_KEY": "",
}  # fmt: skip
#: Values that switch on every optional part, so those templates are checked too.
EVERYTHING = {
    "seed": {"enabled": True},
    "imagePullSecrets": [{"name": "registry"}],
    "api": {"extraAllowedHosts": ["windpipe.example.org"]},
}
VARIANTS = {"defaults": {}, "everything": EVERYTHING}
EXPECTED_KINDS = {
    "Deployment/windpipe-api", "Service/windpipe-api", "Deployment/windpipe-code",
    "Service/windpipe-code", "Job/windpipe-db-init", "ConfigMap/windpipe-fleet",
}  # fmt: skip


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(EVERYTHING)


def container(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod_spec(find(docs, kind, name))["containers"]
    assert len(containers) == 1
    return containers[0]


def test_the_chart_lints_clean() -> None:
    """`helm lint --strict`: no warning or error (the chart's icon, an info, is left out)."""
    for values in VARIANTS.values():
        report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
        assert not report["errors"], report
        serious = [m for m in report["messages"] if m["severity"] >= 2]
        assert not serious, serious


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_manifest_validates_against_the_kubernetes_api(variant: str) -> None:
    manifests = render(VARIANTS[variant])
    kinds = {f"{d['kind']}/{d['metadata']['name']}" for d in manifests}
    assert kinds >= EXPECTED_KINDS
    for doc in manifests:
        validate(doc)


def test_a_typo_fails_the_schema_check() -> None:
    """The strict schemas refuse unknown fields (so the test above means something)."""
    import kubernetes_validate

    doc = find(render(), "Deployment", "windpipe-api")
    broken = json.loads(json.dumps(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"path": "/health"}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_images_are_the_dockerfiles(docs: list[dict[str, Any]]) -> None:
    """Every container runs the image the Dockerfile builds, which Dagster's values name too."""
    image = chart_values()["image"]
    expected = f"{image['repository']}:{image['tag']}"
    assert f"-t {expected}" in DOCKERFILE.read_text()
    for doc in workloads(docs):
        for c in pod_spec(doc)["containers"]:
            assert c["image"] == expected, doc["metadata"]["name"]
    dagster = yaml.safe_load(DAGSTER_VALUES.read_text())
    (entry,) = dagster["dagster-user-deployments"]["deployments"]
    assert f"{entry['image']['repository']}:{entry['image']['tag']}" == expected


def test_pod_security_is_restricted(docs: list[dict[str, Any]]) -> None:
    """The restricted Pod Security Standard, as the image's own user, plus a read-only root
    filesystem and resources on every container."""
    dockerfile = DOCKERFILE.read_text()
    uid = re.search(r"useradd .*--uid (\d+)", dockerfile, re.DOTALL)
    assert uid and "USER windpipe:windpipe" in dockerfile, "the image's own non-root user"
    for doc in workloads(docs):
        spec = pod_spec(doc)
        name = doc["metadata"]["name"]
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] and pod["runAsUser"] == int(uid.group(1)), name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        assert all("hostPath" not in v for v in spec.get("volumes", [])), name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc.get("privileged"), name
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), name
            assert "memory" in c["resources"]["limits"], name
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert {"/tmp", "/var/lib/windpipe"} <= mounts, f"{name}: nowhere to write"


def test_secrets_are_referenced_never_inlined(docs: list[dict[str, Any]]) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"], "the chart creates no Secret"
    secret_name = chart_values()["secretName"]
    for doc in workloads(docs):
        for c in pod_spec(doc)["containers"]:
            for name, entry in env_of(c).items():
                if SECRET.search(name):
                    assert "value" not in entry, f"{name} in clear in {doc['metadata']['name']}"
                    ref = entry["valueFrom"]["secretKeyRef"]
                    assert ref == {"name": secret_name, "key": name}
    text = "\n".join(yaml.safe_dump(d) for d in docs)
    assert "postgresql+psycopg://" not in text and "://windpipe:" not in text


def test_every_windpipe_variable_is_a_setting(docs: list[dict[str, Any]]) -> None:
    known = settings_env_names()
    for doc in workloads(docs):
        for c in pod_spec(doc)["containers"]:
            unknown = {n for n in env_of(c) if n.startswith("WINDPIPE_")} - known
            assert not unknown, f"{doc['metadata']['name']}: not settings: {unknown}"


def pod_settings(
    env: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, fleet: Path
) -> Settings:
    """The settings a pod with ``env`` loads (the image's ENV first, Secrets stood in for)."""
    import os

    for name in [n for n in os.environ if n.startswith("WINDPIPE_")]:
        monkeypatch.delenv(name)
    image_env = parse_dockerfile(DOCKERFILE.read_text()).final.env
    for name, value in image_env.items():
        if name.startswith("WINDPIPE_"):
            monkeypatch.setenv(name, value)
    for name, entry in env.items():
        monkeypatch.setenv(name, entry["value"] if "value" in entry else SECRET_EXAMPLES[name])
    assert env["WINDPIPE_CONFIG"]["value"] == "/etc/windpipe/windpipe.toml"
    monkeypatch.setenv("WINDPIPE_CONFIG", str(fleet))
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """The ConfigMap's windpipe.toml, as the pods read it."""
    path = tmp_path / "windpipe.toml"
    path.write_text(chart_values()["fleet"]["windpipe.toml"])
    return path


def test_the_code_location_and_its_runs_get_every_variable_they_read(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, fleet: Path
) -> None:
    """What `windpipe dagster ...` exports to Dagster's processes, and every EnvVar of the
    definitions, is set on the code server and in the container context its runs get."""
    c = container(docs, "Deployment", "windpipe-code")
    env = env_of(c)
    settings = pod_settings(env, monkeypatch, fleet)
    exported = dagster_environment(
        settings, target_url=SECRET_EXAMPLES["WINDPIPE_TARGET_DB_URL"], home=Path("/x"), base={}
    )
    needed = {name for name in exported if name.startswith("WINDPIPE_")}
    for source in ORCHESTRATION.rglob("*.py"):
        needed |= set(re.findall(r"EnvVar\(\s*[\"'](WINDPIPE_\w+)[\"']", source.read_text()))
    assert not needed - set(env), f"the code location lacks {needed - set(env)}"
    context = json.loads(env["DAGSTER_CONTAINER_CONTEXT"]["value"])
    run_env = {e["name"] for e in context["k8s"]["env"]}
    assert not needed - run_env, f"the runs lack {needed - run_env}"
    assert settings.partitions_start is not None, "set: DAGSTER_HOME is not writable here"
    assert settings.base_api_url.startswith("http://windpipe-api.windpipe.svc.cluster.local:")
    assert settings.turbines[0].id == "WTG01"


def test_the_api_reads_as_the_reader_role_only(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, fleet: Path
) -> None:
    """The API pod gets the read-only URLs, not the writers'; it answers its Service's names."""
    env = env_of(container(docs, "Deployment", "windpipe-api"))
    assert not {"WINDPIPE_SOURCE_DB_URL", "WINDPIPE_TARGET_DB_URL"} & set(env)
    settings = pod_settings(env, monkeypatch, fleet)
    assert settings.api_source_db_url and settings.api_target_db_url
    service = find(docs, "Service", "windpipe-api")["metadata"]["name"]
    assert {service, f"{service}.{NAMESPACE}.svc.cluster.local"} <= set(settings.allowed_hosts)
    assert settings.api_host == "0.0.0.0"


def test_the_schema_job_gets_the_writers_and_the_readers_password(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, fleet: Path
) -> None:
    from windpipe.postgres import reader_role_applies

    env = env_of(container(docs, "Job", "windpipe-db-init"))
    settings = pod_settings(env, monkeypatch, fleet)
    assert settings.source_db_url and settings.target_db_url
    assert reader_role_applies(settings), "db init would not create the API's read-only role"


def test_every_command_is_a_real_one(docs: list[dict[str, Any]]) -> None:
    """`windpipe ...` through windpipe's own CLI parser, `dagster api ...` through Dagster's."""
    from dagster._cli.api import grpc_command, grpc_health_check_command

    for doc in workloads(docs):
        c = pod_spec(doc)["containers"][0]
        argv = [*c["command"], *c.get("args", [])]
        if argv[0] == "windpipe":
            resolve_windpipe_command(argv[1:])
            continue
        assert argv[:3] == ["dagster", "api", "grpc"], argv
        params = grpc_command.make_context("grpc", argv[3:]).params
        assert params["module_name"] == DEFINITIONS_MODULE
        port = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
        assert params["port"] == port
        for probe in (c["readinessProbe"], c["livenessProbe"]):
            check = probe["exec"]["command"]
            assert check[:3] == ["dagster", "api", "grpc-health-check"]
            assert grpc_health_check_command.make_context("check", check[3:]).params["port"] == port


def test_services_reach_their_pods(docs: list[dict[str, Any]]) -> None:
    for service in (d for d in docs if d["kind"] == "Service"):
        name = service["metadata"]["name"]
        workload = find(docs, "Deployment", name)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        assert workload["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
        ports = {p["name"] for c in pod_spec(workload)["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, name
    dagster = yaml.safe_load(DAGSTER_VALUES.read_text())
    (entry,) = dagster["dagster-user-deployments"]["deployments"]
    code = find(docs, "Service", entry["name"])
    assert code["spec"]["ports"][0]["port"] == entry["port"], "Dagster's workspace points here"


def test_the_api_probes_answer_on_a_real_app(
    docs: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    fleet: Path,
    source_url: URL,
    seeded_source: object,
) -> None:
    """Each probe's path and Host header, sent to the API built with the pod's settings (and a
    real source database): 200, not a 404 or the Host check's 400."""
    from windpipe.api import create_app
    from windpipe.postgres import libpq_conninfo

    c = container(docs, "Deployment", "windpipe-api")
    settings = pod_settings(env_of(c), monkeypatch, fleet)
    app = create_app(settings, source_conninfo=libpq_conninfo(source_url))
    port = {p["name"]: p["containerPort"] for p in c["ports"]}
    with serve(app) as api, httpx.Client(base_url=api.url) as client:
        for probe in (c["readinessProbe"], c["livenessProbe"]):
            get = probe["httpGet"]
            assert port[get["port"]] == settings.api_port
            headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
            response = client.get(get["path"], headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "ok"
        # Without the Host header the kubelet would send the pod's IP, which the API refuses.
        refused = client.get("/health", headers={"Host": "10.1.2.3:8000"})
        assert refused.status_code == 400
