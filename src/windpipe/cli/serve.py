"""``windpipe api``: serve the connector API with uvicorn."""

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from windpipe.cli.app import app, clean_errors, console, load_settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from windpipe.settings import Settings


@app.command("api")
@clean_errors
def api(
    host: Annotated[str | None, typer.Option(help="Interface; default WINDPIPE_API_HOST.")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port; default WINDPIPE_API_PORT.")
    ] = None,
) -> None:
    """Serve the connector API (FastAPI + uvicorn)."""
    import uvicorn

    from windpipe.api import create_app
    from windpipe.cli.ports import require_free_port
    from windpipe.errors import SchemaBehindError
    from windpipe.postgres import (
        API_APPLICATION_NAME,
        api_database_url,
        check_connection,
        database_url,
        grant_reader,
        libpq_conninfo,
        make_engine,
        named,
        reader_role_applies,
    )
    from windpipe.settings import load_settings
    from windpipe.source.store import ensure_schema, schema_is_current

    settings = load_settings_or_exit()
    if host or port:
        settings = load_settings(
            api_host=host or settings.api_host, api_port=port or settings.api_port
        )
    require_free_port(settings.api_host, settings.api_port, "API", "--port or WINDPIPE_API_PORT")
    # Resolve (and start) the database before binding the port, so failures are one clear line;
    # bring its schema up to date, so the API never reads a table of an older shape. With a URL
    # of its own (a read-only role, as in containers) the API cannot migrate: `db init` does.
    if settings.api_source_db_url:
        reader_url = api_database_url(settings)
        check_connection(reader_url, label="the API's source")
        engine = make_engine(reader_url)
        try:
            if not schema_is_current(engine):
                raise SchemaBehindError(
                    "the source schema is older than this windpipe; run `windpipe db init` "
                    "(as the writer role) first"
                )
        finally:
            engine.dispose()
    else:
        engine = make_engine(database_url(settings, "source"))
        try:
            ensure_schema(engine)
        finally:
            engine.dispose()
        if reader_role_applies(settings):
            grant_reader(settings, "source")
        reader_url = api_database_url(settings)
    reader_url = named(reader_url, API_APPLICATION_NAME)
    target_reader_url = _target_reader_url(settings)
    if target_reader_url is not None:
        target_reader_url = named(target_reader_url, API_APPLICATION_NAME)
    if not settings.api_key_hashes and not _loopback(settings.api_host):
        console.print(
            f"windpipe api: listening on {settings.api_host} without API keys: anyone who reaches "
            "this port reads the data (set WINDPIPE_API_KEY_HASHES, see `windpipe api-key`)",
            highlight=False,
        )
    server_options: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "log_level": settings.log_level.lower(),
        "timeout_graceful_shutdown": 5,
        # Idle keep-alive connections beyond the request limit are the kernel's, not ours.
        "limit_concurrency": settings.api_max_concurrency * 4,
        "server_header": False,
    }
    if settings.api_workers == 1:
        application = create_app(
            settings,
            source_conninfo=libpq_conninfo(reader_url),
            target_conninfo=libpq_conninfo(target_reader_url) if target_reader_url else None,
        )
        uvicorn.run(application, **server_options)
        return
    # Each worker is a fresh interpreter that builds the app from the environment: hand it what
    # this process settled (the options, and the reader URL, which for the embedded server is
    # only known once it runs). The pool, the concurrency limit and the Host check are per worker.
    os.environ.update(
        WINDPIPE_API_HOST=settings.api_host,
        WINDPIPE_API_PORT=str(settings.api_port),
        WINDPIPE_API_SOURCE_DB_URL=reader_url.render_as_string(hide_password=False),
    )
    if target_reader_url is not None:
        os.environ["WINDPIPE_API_TARGET_DB_URL"] = target_reader_url.render_as_string(
            hide_password=False
        )
    uvicorn.run(
        "windpipe.api.app:create_app", factory=True, workers=settings.api_workers, **server_options
    )


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def _target_reader_url(settings: "Settings") -> "URL | None":
    """The URL the dashboard reads the target with, its read-only grant made where windpipe can.

    The target is the dashboard's, not the API's main job: when it cannot be reached now, the
    API starts anyway, says so, and resolves the URL again on the first dashboard request.
    """
    import psycopg
    import sqlalchemy.exc

    from windpipe.errors import DatabaseUnavailableError, first_line
    from windpipe.postgres import (
        api_target_database_url,
        grant_reader,
        target_reader_role_applies,
    )

    if settings.api_target_db_url:
        return api_target_database_url(settings)
    try:
        if target_reader_role_applies(settings):
            grant_reader(settings, "target")
        return api_target_database_url(settings)
    except (DatabaseUnavailableError, psycopg.Error, sqlalchemy.exc.SQLAlchemyError) as exc:
        console.print(
            f"windpipe api: the target database is not reachable now ({first_line(exc)}); "
            "/aggregates and /ui answer 503 until it is",
            highlight=False,
        )
        return None
