"""The source SCADA table: one row per sample, keyed by its UTC timestamp."""

from datetime import datetime

from sqlalchemy import DateTime, Engine, Float, Index, MetaData, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)


class SourceBase(DeclarativeBase):
    """Declarative base of the source database."""

    metadata = metadata


class SourceSample(SourceBase):
    """A turbine sample: wind speed (m/s), active power (kW), ambient temperature (°C)."""

    __tablename__ = "data"

    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    wind_speed: Mapped[float | None] = mapped_column(Float(precision=53))
    power: Mapped[float | None] = mapped_column(Float(precision=53))
    ambient_temperature: Mapped[float | None] = mapped_column(Float(precision=53))


SOURCE_TABLE = SourceSample.__table__
# The primary key is a btree on timestamp: it is the index that makes a day's range scan fast.
_ = Index  # kept importable for callers that add BRIN indexes on very large tables


def create_source_schema(engine: Engine) -> None:
    """Create the source table if it does not exist (idempotent)."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('windpipe.source.schema'))"))
        metadata.create_all(conn, checkfirst=True)
