"""``windpipe db``: where the databases are, and the embedded server's life cycle."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from windpipe.cli.app import app, clean_errors, console, load_settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from windpipe.postgres import Role

db_app = typer.Typer(
    help="Database URLs, schema, and the embedded PostgreSQL.", no_args_is_help=True
)
app.add_typer(db_app, name="db")


@db_app.command("url")
@clean_errors
def url(
    role: Annotated[Literal["source", "target"], typer.Argument(help="source or target")],
) -> None:
    """Print the SQLAlchemy URL in effect for the source or target database.

    With no URL configured, this starts the embedded PostgreSQL (if it is not running), since
    its address is only known once it runs.
    """
    from windpipe.postgres import database_url

    settings = load_settings_or_exit()
    console.print(
        database_url(settings, role).render_as_string(hide_password=False), highlight=False
    )


@db_app.command("start")
@clean_errors
def start() -> None:
    """Start (or reuse) the embedded PostgreSQL and create both databases."""
    from windpipe.postgres import database_url

    settings = load_settings_or_exit()
    for role in ("source", "target"):
        console.print(f"{role}: {database_url(settings, role).render_as_string()}", highlight=False)


@db_app.command("status")
@clean_errors
def status() -> None:
    """Say which servers are in use and whether the embedded one is running."""
    from sqlalchemy.engine import make_url

    from windpipe.postgres import embedded_status

    settings = load_settings_or_exit()
    for role, configured in (
        ("source", settings.source_db_url),
        ("target", settings.target_db_url),
    ):
        if configured:
            shown = make_url(configured).render_as_string(hide_password=True)
            console.print(f"{role}: configured, {shown}", highlight=False)
    st = embedded_status(settings.data_dir)
    state = f"running (pid {st.pid})" if st.running else "stopped"
    if not st.initialised:
        state = "not created yet"
    console.print(f"embedded PostgreSQL in {st.pgdata}: {state}", highlight=False)


@db_app.command("stop")
@clean_errors
def stop() -> None:
    """Stop the embedded PostgreSQL (its data stay on disk)."""
    from windpipe.postgres import stop_embedded

    settings = load_settings_or_exit()
    was_running = stop_embedded(settings.data_dir)
    console.print("stopped" if was_running else "the embedded PostgreSQL was not running")


@db_app.command("init")
@clean_errors
def init() -> None:
    """Create or migrate the source and target schemas to this version (idempotent)."""
    from windpipe.postgres import (
        check_connection,
        database_url,
        grant_reader,
        make_engine,
        reader_role_applies,
        target_reader_role_applies,
    )
    from windpipe.source.store import ensure_schema as ensure_source
    from windpipe.warehouse.store import ensure_schema as ensure_target

    settings = load_settings_or_exit()
    roles: tuple[tuple[Role, Callable[[Engine], bool]], ...] = (
        ("source", ensure_source),
        ("target", ensure_target),
    )
    for role, ensure in roles:
        url = database_url(settings, role)
        check_connection(url, label=f"the {role}")
        engine = make_engine(url)
        try:
            changed = ensure(engine)
        finally:
            engine.dispose()
        console.print(f"{role} schema {'migrated' if changed else 'up to date'}", highlight=False)
    if reader_role_applies(settings):
        created = grant_reader(settings, "source")
        state = "created" if created else "up to date"
        console.print(f"API read-only role {settings.api_db_role} {state}", highlight=False)
    else:
        console.print(
            "API read-only role: not managed (set WINDPIPE_API_DB_PASSWORD to have `db init` "
            "create it; until then the API reads as the source URL's user)",
            highlight=False,
        )
    if target_reader_role_applies(settings):
        # The dashboard (/aggregates, /ui) reads the target as the same role: SELECT only.
        grant_reader(settings, "target")
        console.print(
            f"API read-only role {settings.api_db_role} reads the target", highlight=False
        )
