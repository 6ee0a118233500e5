"""``windpipe db``: where the databases are, and the embedded server's life cycle."""

from typing import Annotated, Literal

import typer

from windpipe.cli.app import app, clean_errors, console, load_settings_or_exit

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
    """Create the source and target schemas if they do not exist (idempotent)."""
    from windpipe.postgres import check_connection, database_url, make_engine
    from windpipe.source.schema import create_source_schema

    settings = load_settings_or_exit()
    source_url = database_url(settings, "source")
    check_connection(source_url, label="the source")
    create_source_schema(make_engine(source_url))
    try:
        from windpipe.etl.load import create_target_schema
    except ImportError:
        console.print("source schema ready")
        return
    create_target_schema(make_engine(database_url(settings, "target")))
    console.print("source and target schemas ready")
