"""The documentation works offline, and the OpenAPI document describes what the API really does."""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveApi
from windpipe.api import create_app
from windpipe.settings import Settings

#: Where each operation is grouped in the docs: one tag per resource family.
TAGS = {
    "/data": "samples",
    "/variables": "samples",
    "/fingerprints": "samples",
    "/events": "events",
    "/events/changes": "events",
    "/aggregates": "aggregates",
    "/power-curves": "power curves",
    "/flags": "flags",
    "/kpis": "kpis",
    "/turbines": "fleet",
    "/coverage": "fleet",
    "/health": "operations",
}
#: What FastAPI writes when a route has no summary: the function's name, titled ("Get Data").
GENERATED_SUMMARY = re.compile(r"(Get|Head|Post|Put|Patch|Delete)( [A-Z][a-z0-9]*)+")


def test_docs_pages_load_nothing_from_elsewhere(live_api: LiveApi) -> None:
    with httpx.Client(base_url=live_api.url) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page)
            assert html.status_code == 200
            assert "http://" not in html.text and "https://" not in html.text, page
            assert "/static-docs/" in html.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            response = client.get(f"/static-docs/{asset}")
            assert response.status_code == 200 and len(response.content) > 10_000


def test_openapi_lists_every_format_and_the_parameter_forms(live_api: LiveApi) -> None:
    spec = httpx.get(f"{live_api.url}/openapi.json").json()
    data = spec["paths"]["/data"]["get"]
    assert set(data["responses"]["200"]["content"]) == {
        "application/json",
        "text/csv",
        "application/vnd.apache.arrow.stream",
    }
    params = {p["name"]: p["schema"] for p in data["parameters"]}
    assert params["start"]["pattern"].startswith("^\\d{4}-")
    assert params["end"]["pattern"] == params["start"]["pattern"]
    assert "wind_speed" in params["variables"]["anyOf"][0]["items"]["pattern"]
    assert "Retry-After" in data["responses"]["503"]["headers"]
    assert {"422", "503"} <= set(data["responses"])
    assert "securitySchemes" not in spec.get("components", {})  # no keys configured here


def test_openapi_groups_every_operation_under_a_tag_with_a_written_summary(
    settings: Settings,
) -> None:
    """Swagger UI and ReDoc show one group per tag: nothing under "default", no "Get Data"."""
    app = create_app(settings, source_conninfo="unused")
    spec = app.openapi()
    assert [t["name"] for t in spec["tags"]] == [
        "samples",
        "events",
        "aggregates",
        "power curves",
        "flags",
        "kpis",
        "fleet",
        "operations",
    ]
    assert all(t["description"] for t in spec["tags"])
    # Left out on purpose: the dashboard (/ui: its pages and the JSON they draw), the landing page,
    # the docs pages themselves and HEAD /health (the GET documents it).
    assert set(spec["paths"]) == set(TAGS)
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            name = f"{method.upper()} {path}"
            assert operation.get("tags") == [TAGS[path]], name
            summary = operation.get("summary", "")
            assert summary and not GENERATED_SUMMARY.fullmatch(summary), (name, summary)
            assert operation.get("description"), name  # the route's docstring


def test_the_shared_parameters_read_the_same_on_every_route(settings: Settings) -> None:
    """start, end and turbines are declared once (api/params.py): one text, one schema."""
    spec = create_app(settings, source_conninfo="unused").openapi()

    def parameter(path: str, name: str) -> dict[str, object]:
        found = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name]
        assert len(found) == 1, (path, name)
        return found[0]

    for name in ("start", "end", "turbines", "format"):
        assert parameter("/data", name) == parameter("/aggregates", name), name
    assert parameter("/fingerprints", "turbines") == parameter("/data", "turbines")
    assert parameter("/data", "start")["required"] and parameter("/data", "end")["required"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.slow
def test_swagger_ui_renders_the_operations_in_a_headless_browser(live_api: LiveApi) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on PATH: install Debian's chromium (.ci/run does, as root)")
    with tempfile.TemporaryDirectory(prefix="windpipe-chromium-") as profile:
        result = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                # No network but loopback: a page that needed a CDN would stay blank.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{live_api.url}/docs",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    dom = result.stdout
    assert "swagger-ui" in dom, result.stderr[-2000:]
    # Swagger UI turned the OpenAPI document into one block per operation.
    assert 'class="opblock opblock-get' in dom, dom[-2000:]
    for path in ("/data", "/variables", "/coverage", "/health"):
        assert f'data-path="{path}"' in dom, path


@pytest.mark.slow
def test_schemathesis_finds_nothing_against_the_openapi_document(live_api: LiveApi) -> None:
    """Every check but one: ``positive_data_acceptance`` (ST202) expects any request that fits
    the schema to be accepted, but "end after start" and "at most WINDPIPE_API_MAX_RANGE_DAYS"
    relate two parameters, which OpenAPI cannot express; those requests are 422s by design."""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{live_api.url}/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "60",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_docs_assets_come_from_the_pinned_package() -> None:
    from windpipe.api.app import docs_assets

    assert Path(docs_assets(), "swagger-ui-bundle.js").is_file()
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"fastapi-offline==' in pyproject
