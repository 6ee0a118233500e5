"""Render windpipe's chart offline with Helm's Go SDK (helm-python-sdk) and validate manifests
against the Kubernetes API's JSON schemas (kubernetes-validate). No cluster, no network."""

from collections.abc import Iterator
from functools import cache
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

from tests.deploy.test_compose_config import ROOT

CHART = ROOT / "deploy" / "helm" / "windpipe"
DAGSTER_VALUES = ROOT / "deploy" / "helm" / "values.yaml"
RELEASE = "windpipe"
NAMESPACE = "windpipe"
#: The Kubernetes minor versions every manifest must validate against (the newest three the
#: installed kubernetes-validate ships schemas for).
KUBE_VERSIONS = ("1.35.0", "1.36.0", "1.37.0")
POD_KINDS = ("Deployment", "Job", "StatefulSet", "DaemonSet", "CronJob")


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's manifests for an install with ``values``, each a parsed document."""
    key = yaml.safe_dump(values or {}, sort_keys=True)
    return [dict(doc) for doc in _render(key)]


@cache
def _render(values_yaml: str) -> tuple[dict[str, Any], ...]:
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(
            yaml.safe_load(values_yaml), name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    docs = [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]
    return tuple(docs)


def chart_values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one manifest of ``kind`` named ``name``."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod template's spec of a workload manifest."""
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def workloads(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from (d for d in docs if d["kind"] in POD_KINDS)


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's env, by name (each name once)."""
    names = [e["name"] for e in container.get("env", [])]
    assert len(names) == len(set(names)), f"a variable set twice in {container['name']}: {names}"
    return {e["name"]: e for e in container.get("env", [])}


def validate(doc: dict[str, Any]) -> None:
    """``doc`` against the strict schemas (no unknown field) of every version in KUBE_VERSIONS."""
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)
