"""``windpipe dagster webserver|daemon``: Dagster's own servers on windpipe's definitions.

Each command prepares the instance (``$DAGSTER_HOME``, default ``$WINDPIPE_DATA_DIR/dagster``, with
a ``dagster.yaml`` written if missing), exports the ``WINDPIPE_*`` values in effect for the
resources, and then *replaces itself* with the Dagster process, so signals reach it directly (what
a container's PID 1 or ``windpipe up`` needs).
"""

import json
import os
import shutil
import socket
import sys
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from windpipe.cli.app import (
    UserError,
    app,
    clean_errors,
    console,
    err_console,
    load_settings_or_exit,
)

dagster_app = typer.Typer(
    help="Dagster's webserver (UI) and daemon (schedules, sensors, run queue) for windpipe.",
    no_args_is_help=True,
)
app.add_typer(dagster_app, name="dagster")


def _first_source_day(api_url: str, *, wait_seconds: float) -> date | None:
    """The first day of source data, asked of the API's ``/coverage``; None if it stays silent."""
    import httpx

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            body = httpx.get(f"{api_url}/coverage", timeout=3.0).json()
            first = body.get("first") if isinstance(body, dict) else None
            return date.fromisoformat(str(first)[:10]) if first else None
        except (httpx.HTTPError, ValueError):
            if time.monotonic() >= deadline:
                return None
            time.sleep(1.0)


def _executable(script: str, module_args: list[str]) -> list[str]:
    """The console script next to this interpreter (or on PATH), else ``python -m ...``."""
    beside = Path(sys.executable).with_name(script)
    if beside.exists():
        return [str(beside)]
    found = shutil.which(script)
    return [found] if found else [sys.executable, *module_args]


def dagster_env(*, wait_for_api: float) -> dict[str, str]:
    """The environment of a Dagster process: instance home, resources' variables, first day."""
    from windpipe.orchestration.instance import (
        PARTITIONS_START_ENV,
        dagster_environment,
        dagster_home,
        ensure_instance,
        initialize_storage,
    )
    from windpipe.postgres import database_url

    settings = load_settings_or_exit()
    home = dagster_home(settings)
    config = ensure_instance(home)
    initialize_storage(home)
    target = database_url(settings, "target").render_as_string(hide_password=False)
    first_day = None
    if not os.environ.get(PARTITIONS_START_ENV):
        first_day = _first_source_day(settings.base_api_url, wait_seconds=wait_for_api)
        if first_day is None:
            err_console.print(
                f"warning: the API at {settings.base_api_url} did not report its data; "
                f"partitions start at the default (set {PARTITIONS_START_ENV} to choose)",
                highlight=False,
            )
    console.print(f"Dagster instance: {config}", highlight=False)
    return dagster_environment(settings, target_url=target, home=home, first_day=first_day)


def _exec(argv: list[str], env: dict[str, str]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)


@dagster_app.command("init")
@clean_errors
def init() -> None:
    """Create the Dagster instance: its home, a dagster.yaml if missing, and its storage."""
    from windpipe.orchestration.instance import dagster_home, ensure_instance, initialize_storage

    settings = load_settings_or_exit()
    home = dagster_home(settings)
    config = ensure_instance(home)
    created = initialize_storage(home)
    state = "storage created" if created else "storage already there"
    console.print(f"Dagster instance in {home} ({config.name}; {state})", highlight=False)


GrpcSocket = Annotated[
    Path | None,
    typer.Option(
        help="Use the code server listening on this Unix socket (`windpipe dagster code-server "
        "--socket`) instead of starting one of its own.",
    ),
]
WaitForApi = Annotated[
    float, typer.Option(min=0, help="Seconds to wait for the API's first day of data.")
]


def _code_location(grpc_socket: Path | None, *, timeout: float = 180.0) -> list[str]:
    """The Dagster CLI arguments naming the code location: the module, or a running code server.

    For a code server, wait until it accepts connections (it binds once the definitions are
    loaded), so the location never starts in error; it is named like the module's location.
    """
    from windpipe.orchestration.instance import DEFINITIONS_MODULE

    if grpc_socket is None:
        return ["-m", DEFINITIONS_MODULE]
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(grpc_socket))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise UserError(
                        f"no code server answers on {grpc_socket} after {timeout:.0f} s; "
                        "start it with `windpipe dagster code-server --socket ...`"
                    ) from None
        time.sleep(0.2)
    workspace = grpc_socket.with_name(grpc_socket.name + ".workspace.yaml")
    workspace.write_text(
        "load_from:\n"
        "  - grpc_server:\n"
        f"      socket: {json.dumps(str(grpc_socket))}\n"
        f"      location_name: {DEFINITIONS_MODULE}\n"
    )
    return ["-w", str(workspace)]


@dagster_app.command("code-server")
@clean_errors
def code_server(
    socket_path: Annotated[
        Path, typer.Option("--socket", help="Unix socket to serve on (it must not exist yet).")
    ],
    wait_for_api: WaitForApi = 20.0,
) -> None:
    """Serve windpipe's definitions to a webserver and a daemon that share it (dagster api grpc)."""
    from windpipe.orchestration.instance import DEFINITIONS_MODULE

    env = dagster_env(wait_for_api=wait_for_api)
    argv = [
        *_executable("dagster", ["-m", "dagster"]),
        "api",
        "grpc",
        "-m",
        DEFINITIONS_MODULE,
        "--socket",
        str(socket_path),
        "--location-name",
        DEFINITIONS_MODULE,
    ]
    _exec(argv, env)


@dagster_app.command("webserver")
@clean_errors
def webserver(
    host: Annotated[
        str | None, typer.Option(help="Interface; default WINDPIPE_DAGSTER_HOST.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port; default WINDPIPE_DAGSTER_PORT.")
    ] = None,
    grpc_socket: GrpcSocket = None,
    wait_for_api: WaitForApi = 20.0,
) -> None:
    """Serve the Dagster UI for windpipe's definitions (dagster-webserver)."""
    settings = load_settings_or_exit()
    env = dagster_env(wait_for_api=wait_for_api)
    argv = [
        *_executable("dagster-webserver", ["-m", "dagster_webserver"]),
        *_code_location(grpc_socket),
        "--host",
        host or settings.dagster_host,
        "--port",
        str(port or settings.dagster_port),
    ]
    _exec(argv, env)


@dagster_app.command("daemon")
@clean_errors
def daemon(grpc_socket: GrpcSocket = None, wait_for_api: WaitForApi = 20.0) -> None:
    """Run the Dagster daemon: schedules, the catch-up sensor and the run queue (dagster-daemon)."""
    env = dagster_env(wait_for_api=wait_for_api)
    argv = [
        *_executable("dagster-daemon", ["-m", "dagster._daemon"]),
        "run",
        *_code_location(grpc_socket),
    ]
    _exec(argv, env)
