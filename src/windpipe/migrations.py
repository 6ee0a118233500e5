"""Schema history of both databases, as Alembic migrations, and the check that runs them.

``source/`` and ``target/`` are two Alembic script directories (one per database). The commands
that need a schema call :func:`ensure_current`: one query when the schema is current (no Alembic
import), an upgrade in one transaction under an advisory lock when it is behind. A database made
by a release before migrations (tables, no version table) is stamped at the first revision, which
is that release's schema exactly, and upgraded from there.
"""

from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine, text

Database = Literal["source", "target"]
#: The newest revision of each database; a test checks these against the script directories.
HEADS: dict[Database, str] = {"source": "s0004", "target": "t0005"}
#: The revision a pre-migrations release's schema is equivalent to.
BASELINES: dict[Database, str] = {"source": "s0001", "target": "t0001"}
VERSION_TABLE = "alembic_version"
_HERE = Path(__file__).parent
_LOCK_KEY = 0x57504D47  # "WPMG": one migration at a time per server


def script_location(database: Database) -> Path:
    """The Alembic script directory of ``database``."""
    return _HERE / database


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at; None when it has no version table (new or pre-release)."""
    exists = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": VERSION_TABLE})
    if not exists.scalar_one():
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # noqa: S608


def is_current(engine: Engine, database: Database) -> bool:
    """Whether ``database`` is at the newest revision (one cheap query)."""
    with engine.connect() as conn:
        return current_revision(conn) == HEADS[database]


def upgrade(engine: Engine, database: Database, revision: str = "head") -> None:
    """Migrate ``database`` to ``revision`` in one transaction, one migrating process at a time."""
    from alembic import command
    from alembic.config import Config

    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        config = Config()
        config.set_main_option("script_location", str(script_location(database)))
        config.attributes["connection"] = conn
        has_tables = conn.execute(text("SELECT to_regclass('data') IS NOT NULL")).scalar_one()
        if current_revision(conn) is None and has_tables:
            command.stamp(config, BASELINES[database])  # made by a release before migrations
        command.upgrade(config, revision)


def ensure_current(engine: Engine, database: Database) -> bool:
    """Upgrade ``database`` if it is behind; return whether it had to."""
    if is_current(engine, database):
        return False
    upgrade(engine, database)
    return True
