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
from pathlib import Path
from typing import Annotated

import typer

from windpipe.cli.app import (
    UserError,
    app,
    clean_errors,
    console,
    load_settings_or_exit,
)

dagster_app = typer.Typer(
    help="Dagster's webserver (UI) and daemon (schedules, sensors, run queue) for windpipe.",
    no_args_is_help=True,
)
app.add_typer(dagster_app, name="dagster")


def _executable(script: str, module_args: list[str]) -> list[str]:
    """The console script next to this interpreter (or on PATH), else ``python -m ...``."""
    beside = Path(sys.executable).with_name(script)
    if beside.exists():
        return [str(beside)]
    found = shutil.which(script)
    return [found] if found else [sys.executable, *module_args]


def dagster_env() -> dict[str, str]:
    """The environment of a Dagster process: instance home and the resources' variables.

    Where the partitions start is settled by the code location itself (``partitions_start``), so
    no Dagster process waits for the API.
    """
    from windpipe.orchestration.instance import (
        dagster_environment,
        dagster_home,
        ensure_instance,
        initialize_storage,
    )
    from windpipe.postgres import database_url

    settings = load_settings_or_exit()
    home = dagster_home(settings)
    config = ensure_instance(home, settings)
    initialize_storage(home)
    target = database_url(settings, "target").render_as_string(hide_password=False)
    console.print(f"Dagster instance: {config}", highlight=False)
    return dagster_environment(settings, target_url=target, home=home)


def _exec(argv: list[str], env: dict[str, str]) -> None:
    from windpipe.cli.supervisor import default_stop_signals

    sys.stdout.flush()
    sys.stderr.flush()
    default_stop_signals()  # so Dagster stops on SIGINT and SIGTERM whatever this one inherited
    os.execvpe(argv[0], argv, env)


@dagster_app.command("init")
@clean_errors
def init() -> None:
    """Create the Dagster instance: its home, a dagster.yaml if missing, and its storage."""
    from windpipe.orchestration.instance import dagster_home, ensure_instance, initialize_storage

    settings = load_settings_or_exit()
    home = dagster_home(settings)
    config = ensure_instance(home, settings)
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
) -> None:
    """Serve windpipe's definitions to a webserver and a daemon that share it (dagster api grpc)."""
    from windpipe.orchestration.instance import DEFINITIONS_MODULE

    env = dagster_env()
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
) -> None:
    """Serve the Dagster UI for windpipe's definitions (dagster-webserver)."""
    settings = load_settings_or_exit()
    env = dagster_env()
    argv = [
        *_executable("dagster-webserver", ["-m", "dagster_webserver"]),
        *_code_location(grpc_socket),
        "--host",
        host or settings.dagster_host,
        "--port",
        str(port or settings.dagster_port),
        # The UI has no authentication of its own: WINDPIPE_DAGSTER_READ_ONLY=true at least takes
        # away launching, terminating and wiping (see docs/api.md, Security).
        *(["--read-only"] if settings.dagster_read_only else []),
    ]
    _exec(argv, env)


@dagster_app.command("daemon")
@clean_errors
def daemon(grpc_socket: GrpcSocket = None) -> None:
    """Run the Dagster daemon: schedules, the catch-up sensor and the run queue (dagster-daemon)."""
    env = dagster_env()
    argv = [
        *_executable("dagster-daemon", ["-m", "dagster._daemon"]),
        "run",
        *_code_location(grpc_socket),
    ]
    _exec(argv, env)
