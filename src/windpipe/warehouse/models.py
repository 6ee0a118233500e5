"""The target's tables as typed SQLAlchemy models: the brief's ``signal`` and ``data``.

And the farm's daily figures: ``turbine_day_kpi``, ``turbine_day_loss``.

The schema's declaration, for the migrations (which must produce exactly this) and for readers
who want the ORM. The statements are in ``warehouse.store``, ``warehouse.reads`` and
``warehouse.queries`` and need no ORM, so a one-day run does not pay for importing it.
"""

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class TargetBase(DeclarativeBase):
    """Declarative base of the target database."""

    metadata = metadata


class Signal(TargetBase):
    """A turbine's named series, ``<variable>_<aggregation>`` such as ``wind_speed_mean``."""

    __tablename__ = "signal"
    __table_args__ = (UniqueConstraint("turbine", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # SERIAL
    name: Mapped[str] = mapped_column(String(255))
    turbine: Mapped[str] = mapped_column(String(64))
    variable: Mapped[str | None] = mapped_column(String(63))
    aggregation: Mapped[str | None] = mapped_column(String(16))


class Datum(TargetBase):
    """One 10-minute aggregate: the window start (a UTC instant), its signal, and the value.

    Partitioned by UTC month on ``timestamp`` (migration t0006, ``warehouse.partitions``); the
    primary key holds the partition key, as PostgreSQL requires, so it is ``(id, timestamp)``.
    """

    __tablename__ = "data"
    __table_args__ = (
        UniqueConstraint("signal_id", "timestamp"),
        CheckConstraint(
            "value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)",
            name="finite",
        ),
        {"postgresql_partition_by": 'RANGE ("timestamp")'},
    )

    # BIGSERIAL (migration t0002): data_id_seq, one id per row.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # timestamptz (t0004), the partition key (t0006).
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    signal_id: Mapped[int] = mapped_column(Integer, ForeignKey("signal.id"))
    value: Mapped[float] = mapped_column(Float(precision=53))  # DOUBLE PRECISION


class DayLoad(TargetBase):
    """What the load of a turbine's UTC day read: the source's fingerprint of that day then.

    Written in the load's transaction; a source fingerprint that differs now means the day's
    aggregates are stale (late or corrected data), which the change sensor re-materializes.
    """

    __tablename__ = "day_load"

    turbine: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text)  # the API's /fingerprints, "0:0" when empty
    samples: Mapped[int] = mapped_column(BigInteger)
    non_finite: Mapped[int] = mapped_column(BigInteger)  # NaN/±Inf samples left out
    #: Windows left out for holding too few samples (``[etl] min_coverage``).
    thin_windows: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    #: Windows ending by then were complete when loaded (the day's end, or the live edge's).
    complete_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WindowFlag(TargetBase):
    """A quality flag of one turbine's window (``analytics.flags``): the data stays in ``data``.

    ``signal`` is the target signal the flag concerns (``wind_speed_mean``), or ``''`` for a flag
    about the whole window (``icing_suspect``, ``stopped_with_wind``): the API serves it as null.
    Replaced per (turbine, UTC day) by ``windpipe flags`` (``warehouse.flags``); migration t0009.
    """

    __tablename__ = "window_flag"

    turbine: Mapped[str] = mapped_column(String(64), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    flag: Mapped[str] = mapped_column(String(32), primary_key=True)
    signal: Mapped[str] = mapped_column(String(255), primary_key=True, server_default=text("''"))


class FlagDay(TargetBase):
    """Which (turbine, UTC day)s have their flags computed, how many, and when (t0009)."""

    __tablename__ = "flag_day"

    turbine: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    flags: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TurbineDayKpi(TargetBase):
    """A turbine's figures of one UTC day (README, "Availability and energy"): energy, capacity
    factor, time-based (IEC 61400-26-1) and production-based (IEC 61400-26-2) availability.

    Replaced per (turbines, day range) in one transaction by ``windpipe kpis``; the farm's rows are
    not stored, they are summed from these when read (``analytics.availability.summarise``)."""

    __tablename__ = "turbine_day_kpi"

    turbine: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    windows_expected: Mapped[int] = mapped_column(Integer)
    windows_held: Mapped[int] = mapped_column(Integer)  # windows with a power_mean
    coverage: Mapped[float] = mapped_column(Float(precision=53))
    energy_kwh: Mapped[float] = mapped_column(Float(precision=53))
    rated_power_kw: Mapped[float | None] = mapped_column(Float(precision=53))
    capacity_factor: Mapped[float | None] = mapped_column(Float(precision=53))
    time_operative_s: Mapped[float] = mapped_column(Float(precision=53))
    time_non_operative_s: Mapped[float] = mapped_column(Float(precision=53))
    time_excluded_s: Mapped[float] = mapped_column(Float(precision=53))
    availability_time: Mapped[float | None] = mapped_column(Float(precision=53))
    lost_production_kwh: Mapped[float] = mapped_column(Float(precision=53))
    availability_energy: Mapped[float | None] = mapped_column(Float(precision=53))
    #: Windows that lost production at an unknown wind speed or outside the reference curve.
    lost_unpriced_windows: Mapped[int] = mapped_column(Integer)
    #: The reference curve of the lost production: ``warranted`` or ``measured``.
    reference: Mapped[str] = mapped_column(String(16))
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TurbineDayLoss(TargetBase):
    """A turbine's time and lost production in one IEC 61400-26-1 category on one UTC day (the
    categories present that day only), written with its ``turbine_day_kpi`` row."""

    __tablename__ = "turbine_day_loss"

    turbine: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    time_s: Mapped[float] = mapped_column(Float(precision=53))
    lost_kwh: Mapped[float] = mapped_column(Float(precision=53))


SIGNAL_TABLE = Signal.__table__
DATA_TABLE = Datum.__table__
