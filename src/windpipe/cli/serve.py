"""``windpipe api``: serve the connector API with uvicorn."""

from typing import Annotated

import typer

from windpipe.cli.app import app, clean_errors, load_settings_or_exit


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
    from windpipe.postgres import database_url, libpq_conninfo, make_engine
    from windpipe.settings import load_settings
    from windpipe.source.store import ensure_schema

    settings = load_settings_or_exit()
    if host or port:
        settings = load_settings(
            api_host=host or settings.api_host, api_port=port or settings.api_port
        )
    require_free_port(settings.api_host, settings.api_port, "API", "--port or WINDPIPE_API_PORT")
    # Resolve (and start) the database before binding the port, so failures are one clear line;
    # bring its schema up to date, so the API never reads a table of an older shape.
    source_url = database_url(settings, "source")
    engine = make_engine(source_url)
    try:
        ensure_schema(engine)
    finally:
        engine.dispose()
    conninfo = libpq_conninfo(source_url)
    application = create_app(settings, source_conninfo=conninfo)
    uvicorn.run(
        application,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
    )
