"""The check that runs a database's Alembic history: one runner for both databases.

Each database's owner keeps its history beside its models (``source/migrations/``,
``warehouse/migrations/``) and hands it over as a :class:`History` (``HISTORY`` in its ``store``).
This module imports no owner, and a history's ``env.py`` imports only its models: no loop.

The commands that need a schema call :func:`ensure_current`: one query when the schema is current
(no Alembic import), an upgrade in one transaction under an advisory lock when it is behind. A
database made by a release before migrations (tables, no version table) is stamped at the first
revision, which is that release's schema exactly, and upgraded from there.
"""

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, text

VERSION_TABLE = "alembic_version"
_LOCK_KEY = 0x57504D47  # "WPMG": one migration at a time per server


@dataclass(frozen=True)
class History:
    """One database's Alembic history: its script directory, newest and baseline revisions."""

    #: The database, as messages name it: ``source`` or ``target``.
    database: str
    #: The Alembic script directory (``env.py``, ``versions/``).
    scripts: Path
    #: The newest revision; a test checks it against the script directory.
    head: str
    #: The revision a pre-migrations release's schema is equivalent to.
    baseline: str

    @classmethod
    def beside(cls, module: str, *, database: str, head: str, baseline: str) -> "History":
        """The history in the ``migrations/`` folder beside ``module`` (a store's ``__file__``)."""
        return cls(database, Path(module).with_name("migrations"), head, baseline)


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at; None when it has no version table (new or pre-release)."""
    exists = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": VERSION_TABLE})
    if not exists.scalar_one():
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # noqa: S608


def is_current(engine: Engine, history: History) -> bool:
    """Whether the database is at ``history``'s newest revision (one cheap query)."""
    with engine.connect() as conn:
        return current_revision(conn) == history.head


def upgrade(engine: Engine, history: History, revision: str = "head") -> None:
    """Migrate the database to ``revision`` in one transaction, one migrating process at a time."""
    from alembic import command
    from alembic.config import Config

    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        config = Config()
        config.set_main_option("script_location", str(history.scripts))
        config.attributes["connection"] = conn
        has_tables = conn.execute(text("SELECT to_regclass('data') IS NOT NULL")).scalar_one()
        if current_revision(conn) is None and has_tables:
            command.stamp(config, history.baseline)  # made by a release before migrations
        command.upgrade(config, revision)


def ensure_current(engine: Engine, history: History) -> bool:
    """Upgrade the database if it is behind ``history``; return whether it had to."""
    if is_current(engine, history):
        return False
    upgrade(engine, history)
    return True
