"""The source table as a typed SQLAlchemy model: the brief's ``data``, one row per sample.

The schema's declaration, for the migrations (which must produce exactly this); the statements on
the table are in ``source.store``. A variable added to the catalog is a column added to the table
(by ALTER TABLE): the store reads and writes it with no change here.
"""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    Identity,
    MetaData,
    Numeric,
    Text,
    func,
)
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
    """A turbine's sample: wind speed (m/s), active power (kW), ambient temperature (°C).

    The primary key ``(turbine, timestamp)`` is the btree that makes a turbine's day a range scan.
    """

    __tablename__ = "data"

    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    wind_speed: Mapped[float | None] = mapped_column(Float(precision=53))
    power: Mapped[float | None] = mapped_column(Float(precision=53))
    ambient_temperature: Mapped[float | None] = mapped_column(Float(precision=53))
    turbine: Mapped[str] = mapped_column(Text, primary_key=True)  # added by s0002, hence last


class DayFingerprint(SourceBase):
    """What a turbine's UTC day holds: sample count and the sum of its rows' hashes.

    Kept by triggers on ``data`` (migration s0003), read by the API's ``/fingerprints``: the ETL
    records it with each load, so a day whose fingerprint moved since is known to be stale.
    """

    __tablename__ = "day_fingerprint"

    turbine: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    samples: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[Decimal] = mapped_column(Numeric)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TurbineOrigin(SourceBase):
    """Where a turbine's samples come from: ``synthetic`` (``windpipe seed``) or ``imported``.

    Written by the seed and the importer (migration s0004); the seed and the live feed never write
    a turbine whose origin is ``imported``.
    """

    __tablename__ = "turbine_origin"
    __table_args__ = (
        CheckConstraint("origin IN ('synthetic', 'imported')", name="ck_turbine_origin_origin"),
    )

    turbine: Mapped[str] = mapped_column(Text, primary_key=True)
    origin: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TurbineEvent(SourceBase):
    """A turbine's event: ``code`` and ``message`` from ``start`` to ``end`` (NULL: ongoing).

    Written by ``windpipe events import`` (migration s0005), upserted by the primary key
    ``(turbine, start, code)``; read by the API's ``/events``.
    """

    __tablename__ = "turbine_event"
    __table_args__ = (
        CheckConstraint('"end" IS NULL OR "end" > start', name="ck_turbine_event_end"),
    )

    turbine: Mapped[str] = mapped_column(Text, primary_key=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    message: Mapped[str | None] = mapped_column(Text)


class EventChange(SourceBase):
    """A write to ``turbine_event``: the span of one turbine's events it touched, before and after.

    Kept by statement-level triggers on ``turbine_event`` (migration s0006), one row per turbine
    and statement; ``turbine``, ``first`` and ``last`` NULL after a ``TRUNCATE`` (everything),
    ``last`` NULL when an event touched is ongoing. Read by the API's ``/events/changes``: the
    ``event_changes`` sensor reports the (turbine, day)s it names as updated events, and the
    figures downstream of them are computed again.
    """

    __tablename__ = "event_change"

    id: Mapped[int] = mapped_column(
        BigInteger, Identity(always=True), primary_key=True, autoincrement=True
    )
    turbine: Mapped[str | None] = mapped_column(Text)
    first: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


SOURCE_TABLE = SourceSample.__table__
