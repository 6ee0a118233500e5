"""The domain catalog: signals, aggregations, signal names, UTC days and 10-minute windows.

The ground floor of windpipe: every other module asks this one what a source variable is, how an
aggregation is computed (in Polars and in SQL), how a target signal is named and what a UTC day or
a window is. No I/O and no heavy import here (Polars is imported only when an expression is built;
pydantic, which the settings load anyway, models the turbine), so the CLI can read it at start-up
for free.
"""

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class Variable:
    """A numeric column of the source table: one sample per row."""

    name: str
    unit: str
    description: str
    #: Physically plausible range, for quality checks (inclusive).
    low: float
    high: float
    #: The source table's column holding it (the name, unless a configuration says otherwise).
    column: str = ""
    #: Whether the ETL aggregates it by default.
    aggregate: bool = False

    def __post_init__(self) -> None:
        if not self.column:
            object.__setattr__(self, "column", self.name)


#: A turbine id, as the configuration, the importer, the API's parameters and every SQL literal
#: accept it: a letter or digit, then up to 63 letters, digits or ``_ . -`` (never a quote).
TURBINE_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"


def is_turbine_id(text: str) -> bool:
    """Whether ``text`` is a turbine id (``TURBINE_ID``), e.g. before it goes into SQL."""
    return re.fullmatch(TURBINE_ID, text) is not None


class Turbine(BaseModel):
    """A turbine of the fleet: its id in the source table's ``turbine`` column, and metadata.

    The configuration's ``[[turbines]]`` entry and the API's answer extend this model."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=f"^{TURBINE_ID}$")
    model: str | None = None
    rated_power_kw: float | None = Field(default=None, gt=0, le=100_000)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    hub_height_m: float | None = Field(default=None, gt=0, le=500)
    # -- power curves (IEC 61400-12-1): the site and the machine
    #: Height of the site above sea level: the standard atmosphere's pressure when no pressure
    #: signal is declared (``[power_curve] pressure_signal``).
    elevation_m: float | None = Field(default=None, ge=-500, le=9_000)
    rotor_diameter_m: float | None = Field(default=None, gt=0, le=500)
    #: Cut-in wind speed (m/s): the low end of the curve's completeness range, and the speed above
    #: which a turbine that does not produce is ``stopped_with_wind``. Unset: the curve's first
    #: bin producing power (3.5 m/s for the flag, and when no bin produces).
    cut_in_ms: float | None = Field(default=None, gt=0, le=30)
    # -- end of the power-curve block
    #: ``windpipe seed`` and the live feed generate this turbine (a demo turbine); never set it on
    #: a turbine with real data (those holding imported data are refused whatever it says).
    synthetic: bool = Field(
        default=False, description="Marked synthetic = true: the seed and live feed generate it."
    )
    #: The warranted power curve, ``[[wind speed m/s, power kW], …]`` with wind speeds strictly
    #: ascending and powers >= 0: the reference of the lost production (README, "Availability
    #: and energy"); None: the turbine's own measured curve.
    power_curve: tuple[tuple[float, float], ...] | None = Field(
        default=None,
        description="Warranted power curve, [[wind speed m/s, power kW], ...], wind speeds "
        "ascending: the reference of lost production (default: the measured curve).",
    )

    @field_validator("power_curve")
    @classmethod
    def _valid_curve(
        cls, value: tuple[tuple[float, float], ...] | None
    ) -> tuple[tuple[float, float], ...] | None:
        if value is None:
            return None
        if len(value) < 2:
            raise ValueError(
                f"power_curve has {len(value)} point(s); give at least two [wind speed m/s, kW] "
                "pairs, e.g. [[3, 0], [12, 2000], [25, 2000]]"
            )
        for (ws, _), (next_ws, _) in itertools.pairwise(value):
            if not next_ws > ws:
                raise ValueError(
                    f"power_curve wind speeds must be strictly ascending: {next_ws:g} follows "
                    f"{ws:g}"
                )
        for ws, kw in value:
            if not (math.isfinite(ws) and math.isfinite(kw)) or ws < 0 or kw < 0:
                raise ValueError(
                    f"power_curve point [{ws:g}, {kw:g}] is not [wind speed >= 0, power >= 0]"
                )
        return value


#: The turbine of the brief, when no configuration names any: its rows carry this id.
DEFAULT_TURBINE_ID = "WTG01"


@dataclass(frozen=True)
class EventChange:
    """A write to the turbines' events (``GET /events/changes``): what they say from ``first`` to
    ``last`` may differ since. ``turbine`` None: every turbine (a ``TRUNCATE``); ``first`` None:
    from the beginning; ``last`` None: to now (an ongoing event was touched)."""

    id: int
    turbine: str | None
    first: datetime | None
    last: datetime | None

    def days(self, floor: date, today: date) -> list[date]:
        """The UTC days the change touches, within ``[floor, today]`` (``last`` is exclusive)."""
        lo = floor if self.first is None else max(floor, self.first.astimezone(UTC).date())
        hi = (
            today
            if self.last is None
            else min(today, (self.last.astimezone(UTC) - timedelta(microseconds=1)).date())
        )
        return days_between(lo, hi) if lo <= hi else []


@dataclass(frozen=True)
class Coverage:
    """What a source holds: first and last sample (aware UTC, None when empty), row count."""

    first: datetime | None
    last: datetime | None
    rows: int


@dataclass(frozen=True)
class Aggregation:
    """A statistic of one variable over one window."""

    name: str
    #: The Polars expression over column ``v`` of a window's samples.
    polars: Callable[[str], "pl.Expr"]
    #: The equivalent PostgreSQL aggregate over a column, for independent checks.
    sql: str
    #: Samples a window needs for the statistic to exist (the sample std needs two).
    min_samples: int = 1


def _col(name: str) -> "pl.Expr":
    import polars as pl

    return pl.col(name)


#: The source variables, in the source table's column order.
VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable(
            "wind_speed",
            "m/s",
            "Wind speed at hub height, 1 sample per row.",
            low=0.0,
            high=60.0,
            aggregate=True,
        ),
        Variable(
            "power",
            "kW",
            "Active power output of the turbine.",
            low=-500.0,
            high=20_000.0,
            aggregate=True,
        ),
        Variable(
            "ambient_temperature",
            "degC",
            "Outside air temperature at the nacelle.",
            low=-60.0,
            high=60.0,
        ),
    )
}

#: The IEC 61400-25 name (as OpenOA's ``PlantData`` reads it) of each signal windpipe knows by
#: name, when ``[signals.<name>] iec_name`` does not say: its 10-minute mean is exported under it.
DEFAULT_IEC_NAMES: dict[str, str] = {
    "wind_speed": "WMET_HorWdSpd",
    "power": "WTUR_W",
    "ambient_temperature": "WMET_EnvTmp",
    "wind_direction": "WMET_HorWdDir",
    "pitch_angle": "WROT_BlPthAngVal",
    "status": "WTUR_TurSt",
}
#: The relative wind direction (wind vane, yaw error): derived as wind_direction - nacelle_direction
#: when no signal declares it.
RELATIVE_DIRECTION_IEC = "WMET_HorWdDirRel"
#: An IEC 61400-25 name as accepted in a configuration: a logical-node prefix, ``_``, a data name.
IEC_NAME = r"^[A-Z][A-Za-z0-9]{2,15}_[A-Za-z][A-Za-z0-9]{0,47}$"


def relative_direction(wind_direction: "pl.Expr", nacelle_direction: "pl.Expr") -> "pl.Expr":
    """The wind direction relative to the nacelle in [-180, 180) degrees (the yaw error, OpenOA's
    ``WMET_HorWdDirRel``): ``wind_direction - nacelle_direction`` wrapped, e.g. 5 - 355 = 10."""
    return (wind_direction - nacelle_direction + 180.0).mod(360.0) - 180.0


#: The aggregations the ETL knows, in their canonical order.
AGGREGATIONS: dict[str, Aggregation] = {
    a.name: a
    for a in (
        Aggregation("mean", lambda v: _col(v).mean(), "avg({})"),
        Aggregation("min", lambda v: _col(v).min(), "min({})"),
        Aggregation("max", lambda v: _col(v).max(), "max({})"),
        Aggregation("std", lambda v: _col(v).std(ddof=1), "stddev_samp({})", min_samples=2),
        # A window whose values are all missing counts 0; null it so it is dropped like the others.
        Aggregation("count", lambda v: _col(v).count().replace(0, None), "count({})"),
    )
}

#: Defaults of the brief: the ETL aggregates wind speed and power (the variables marked
#: ``aggregate``) to mean, min, max and std.
DEFAULT_ETL_AGGREGATIONS: tuple[str, ...] = ("mean", "min", "max", "std")


class SignalKind(StrEnum):
    """What a signal's samples mean, hence how a window of them is summarised."""

    #: A linear quantity (speed, power, temperature): mean, min, max, std, count.
    LINEAR = "linear"
    #: An angle in degrees, meteorological, in [0, 360): circular mean, Yamartino std, count.
    ANGLE = "angle"
    #: An angle in degrees whose declared range is [-180, 180] (relative to the nacelle, a yaw
    #: error): as ``angle``, the mean in [-180, 180). Not written in a configuration: an
    #: ``angle`` with that range is one.
    SIGNED_ANGLE = "signed_angle"
    #: A monotonic cumulative total (kWh): the increase in a window (``delta``), last, count.
    COUNTER = "counter"
    #: Integer status codes: the last, the most held (``mode``), count.
    STATE = "state"


#: The aggregations of each kind, in canonical order.
KIND_AGGREGATIONS: dict[SignalKind, tuple[str, ...]] = {
    SignalKind.LINEAR: ("mean", "min", "max", "std", "count"),
    SignalKind.ANGLE: ("mean", "std", "count"),
    SignalKind.SIGNED_ANGLE: ("mean", "std", "count"),
    SignalKind.COUNTER: ("delta", "last", "count"),
    SignalKind.STATE: ("last", "mode", "count"),
}
#: The kinds a configuration may name (``[signals.<name>] kind = ...``).
DECLARED_KINDS: tuple[str, ...] = ("linear", "angle", "counter", "state")
#: Every aggregation of any kind, as target signal names may end (``<signal>_<aggregation>``).
ALL_AGGREGATIONS: tuple[str, ...] = ("mean", "min", "max", "std", "count", "delta", "last", "mode")


def min_samples(aggregation: str) -> int:
    """Samples a window needs for ``aggregation`` to exist (the std needs two)."""
    return 2 if aggregation == "std" else 1


def default_aggregations(kind: SignalKind, linear: Sequence[str]) -> tuple[str, ...]:
    """What a signal of ``kind`` gets when it names no ``aggregations`` of its own: for a linear
    one ``linear`` (``[etl] aggregations``); for an angle those of them an angle has (mean, std,
    count); a counter its ``delta``, a state its ``mode`` (plus ``count`` when asked for)."""
    own = KIND_AGGREGATIONS[kind]
    if kind is SignalKind.LINEAR:
        return tuple(linear)
    if kind in (SignalKind.ANGLE, SignalKind.SIGNED_ANGLE):
        return tuple(a for a in linear if a in own) or ("mean",)
    first = ("delta",) if kind is SignalKind.COUNTER else ("mode",)
    return first + (("count",) if "count" in linear else ())


@dataclass(frozen=True)
class Rollup:
    """What the ETL computes: per variable (in order) its kind and aggregations, and which
    windows are too thin to write."""

    #: Variable -> its aggregations, in the order the target signals are listed.
    aggregations: Mapping[str, tuple[str, ...]]
    #: Variable -> its kind (absent: linear).
    kinds: Mapping[str, SignalKind] = field(default_factory=dict)
    #: A window holding fewer samples than this share of the expected count is not written.
    min_coverage: float = 0.0
    #: The source's sampling interval; None: inferred from the samples (``expected_samples``).
    sampling_interval: timedelta | None = None

    @classmethod
    def of(
        cls,
        variables: Sequence[str],
        aggregations: "Sequence[str] | Mapping[str, Sequence[str]]",
        kinds: Mapping[str, SignalKind] | None = None,
        **options: Any,
    ) -> "Rollup":
        """The rollup of ``variables``, each with ``aggregations`` (one list for all, or one
        per variable)."""
        per = (
            {v: tuple(aggregations[v]) for v in variables}
            if isinstance(aggregations, Mapping)
            else {v: tuple(aggregations) for v in variables}
        )
        return cls(per, dict(kinds or {}), **options)

    @property
    def variables(self) -> list[str]:
        """The variables, in order."""
        return list(self.aggregations)

    def kind(self, variable: str) -> SignalKind:
        """The kind of ``variable`` (linear unless declared otherwise)."""
        return self.kinds.get(variable, SignalKind.LINEAR)

    @property
    def signals(self) -> list[str]:
        """Every target signal, variable-major: ``<variable>_<aggregation>``."""
        return [signal_name(v, a) for v, aggs in self.aggregations.items() for a in aggs]

    @property
    def counters(self) -> list[str]:
        """The counter variables (their first window needs the sample before the range)."""
        return [v for v in self.aggregations if self.kind(v) is SignalKind.COUNTER]


#: Windows ``parse_window`` accepts are whole seconds dividing a day, from one minute to a day.
_WINDOW_UNITS = {"s": 1, "min": 60, "m": 60, "h": 3600, "d": 86_400}


def parse_window(text: str) -> timedelta:
    """A window such as ``10min``, ``1h`` or ``1d``; ValueError saying what is accepted."""
    accepted = (
        "a duration from 1min to 1d that divides a day, e.g. 1min, 5min, 10min, 15min, 1h, 1d"
    )
    number, unit = text.strip().rstrip("abcdefghijklmnopqrstuvwxyz"), text.strip()
    unit = unit[len(number) :]
    if not number.isdigit() or unit not in _WINDOW_UNITS:
        raise ValueError(f"window {text!r} is not {accepted}")
    seconds = int(number) * _WINDOW_UNITS[unit]
    if not 60 <= seconds <= 86_400 or 86_400 % seconds:
        raise ValueError(f"window {text!r} is not {accepted}")
    return timedelta(seconds=seconds)


def parse_duration(text: str) -> timedelta:
    """A positive duration such as ``1s``, ``1min`` or ``10min``; ValueError saying what is
    accepted."""
    number, unit = text.strip().rstrip("abcdefghijklmnopqrstuvwxyz"), text.strip()
    unit = unit[len(number) :]
    if not number.isdigit() or unit not in _WINDOW_UNITS or int(number) == 0:
        raise ValueError(
            f"duration {text!r} is not a whole number of s, min, h or d, e.g. 1s, 1min, 10min"
        )
    return timedelta(seconds=int(number) * _WINDOW_UNITS[unit])


def polars_duration(window: timedelta) -> str:
    """A window as a Polars duration string (whole seconds)."""
    return f"{int(window.total_seconds())}s"


WINDOW = timedelta(minutes=10)
DAY = timedelta(days=1)
WINDOWS_PER_DAY = DAY // WINDOW
_EPOCH = datetime(1970, 1, 1)


def check_names(names: Sequence[str], accepted: Sequence[str], what: str) -> list[str]:
    """``names`` deduplicated in order; ValueError naming the unknown ones and what is accepted."""
    if not names:
        raise ValueError(f"no {what} given; accepted: {', '.join(accepted)}")
    unknown = [n for n in names if n not in accepted]
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; accepted: {', '.join(accepted)}")
    return list(dict.fromkeys(names))


# -- signals ---------------------------------------------------------------------------------------


def signal_name(variable: str, aggregation: str) -> str:
    """The target signal of one aggregation of one variable, e.g. ``wind_speed_mean``."""
    return f"{variable}_{aggregation}"


def signal_names(
    variables: Sequence[str], aggregations: "Sequence[str] | Mapping[str, Sequence[str]]"
) -> list[str]:
    """Every signal of ``variables`` x ``aggregations`` (one list for all, or one per variable),
    variable-major."""
    if isinstance(aggregations, Mapping):
        return [signal_name(v, a) for v in variables for a in aggregations[v]]
    return [signal_name(v, a) for v in variables for a in aggregations]


def parse_signal(name: str) -> tuple[str, str]:
    """``(variable, aggregation)`` of a signal name; ValueError for a name not made here."""
    variable, _, aggregation = name.rpartition("_")
    if not variable or aggregation not in ALL_AGGREGATIONS:
        raise ValueError(f"{name!r} is not <variable>_<aggregation> with a known aggregation")
    return variable, aggregation


# -- period statistics (10-minute exports) ----------------------------------------------------

#: The statistics of a period an export may give per signal (``Ws_min = "wind_speed:min"``).
#: ``mean`` is stored in the signal's own column; each other one in ``<column>__<stat>``.
PERIOD_STATISTICS = ("mean", "min", "max", "std", "count")
#: Between a signal's column (or name) and one of its statistics: ``wind_speed__min``.
STATISTIC_SEPARATOR = "__"
#: The longest name PostgreSQL keeps for a column (longer ones are cut).
MAX_IDENTIFIER = 63


def statistic_column(column: str, stat: str) -> str:
    """Where a period statistic of the signal in ``column`` is stored (and served, by signal
    name): the column itself for ``mean``, else ``<column>__<stat>``."""
    return column if stat == "mean" else f"{column}{STATISTIC_SEPARATOR}{stat}"


# -- UTC days and windows --------------------------------------------------------------------------


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as a naive UTC datetime (naive input is taken to be UTC already)."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def day_start(day: date) -> datetime:
    """``day`` 00:00 as a naive UTC datetime (as the ETL's frames and the store's reads use)."""
    return datetime(day.year, day.month, day.day)


#: The fingerprint (``samples:checksum``, ``GET /fingerprints``) of a day without samples.
EMPTY_FINGERPRINT = "0:0"


def utc_midnight(day: date) -> datetime:
    """``day`` 00:00 as an aware UTC datetime (the source and the API speak aware UTC)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """``[day 00:00, day+1 00:00)`` as naive UTC datetimes; ValueError for the calendar's end."""
    start = day_start(day)
    try:
        return start, start + DAY
    except OverflowError:
        raise ValueError(
            f"{day.isoformat()} is the last representable day; it has no end"
        ) from None


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` inclusive (empty when ``last < first``)."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def days_touched(start: datetime, end: datetime) -> list[date]:
    """UTC days that ``[start, end)`` touches (naive means UTC)."""
    start, end = naive_utc(start), naive_utc(end)
    if end <= start:
        return []
    return days_between(start.date(), (end - timedelta(microseconds=1)).date())


def iter_day_spans(start: datetime, end: datetime) -> Iterator[tuple[date, datetime, datetime]]:
    """Per UTC day touched by ``[start, end)`` (aware): the day and the part of the range in it."""
    for day in days_touched(start, end):
        midnight = utc_midnight(day)
        try:
            next_midnight = midnight + DAY
        except OverflowError:
            next_midnight = end
        yield day, max(start, midnight), min(end, next_midnight)


def window_floor(moment: datetime, window: timedelta = WINDOW) -> datetime:
    """The start of the window holding ``moment`` (windows are aligned to 00:00 UTC)."""
    naive = naive_utc(moment)
    return naive - (naive - _EPOCH) % window


def windows_of_day(day: date, window: timedelta = WINDOW) -> list[datetime]:
    """The window starts of a UTC day (naive UTC)."""
    start = day_start(day)
    return [start + i * window for i in range(DAY // window)]


def naive_utc_expr(dtype: "pl.DataType", column: str = "timestamp") -> "pl.Expr":
    """A Polars expression for ``column`` as naive UTC microseconds, whatever zone or unit."""
    import polars as pl

    if not isinstance(dtype, pl.Datetime):
        raise ValueError(f"the {column} column must be a datetime, got {dtype}")
    ts = pl.col(column)
    if dtype.time_zone is not None:
        ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return ts.dt.cast_time_unit("us")


# -- turbine states: IEC 61400-26-1 categories of events and windows -------------------------------

#: The information categories of IEC 61400-26-1 (time-based availability), as snake_case, in the
#: standard's order. A window two events cover equally gets the later one of this list.
EVENT_CATEGORIES: tuple[str, ...] = (
    "full_performance",
    "partial_performance",
    "technical_standby",
    "out_of_environmental_specification",
    "requested_shutdown",
    "out_of_electrical_specification",
    "scheduled_maintenance",
    "planned_corrective_action",
    "forced_outage",
    "suspended",
    "force_majeure",
    "information_unavailable",
)
#: The category of an event whose code ``[event_codes]`` does not name.
UNKNOWN_CODE_CATEGORY = "forced_outage"
#: A window no event covers: holding data, or not.
UNCOVERED_HELD = "full_performance"
UNCOVERED_EMPTY = "information_unavailable"


def check_event_category(category: str) -> str:
    """``category`` if it is one of :data:`EVENT_CATEGORIES`; ValueError listing them if not."""
    if category not in EVENT_CATEGORIES:
        raise ValueError(
            f"{category!r} is not an IEC 61400-26-1 category; accepted: "
            + ", ".join(EVENT_CATEGORIES)
        )
    return category


def event_category(code: str, codes: Mapping[str, str]) -> str:
    """The category of an event ``code`` (``codes``: code -> category); unnamed: forced outage."""
    return codes.get(code, UNKNOWN_CODE_CATEGORY)


def unknown_codes(events: "pl.DataFrame", codes: Mapping[str, str]) -> list[str]:
    """The distinct codes of ``events`` that ``codes`` does not name, sorted (to be reported)."""
    seen = {str(c) for c in events["code"].unique().to_list() if c is not None}
    return sorted(seen - set(codes))


def window_categories(
    events: "pl.DataFrame",
    windows: "pl.DataFrame",
    held: "pl.DataFrame | pl.Series",
    codes: Mapping[str, str],
    *,
    window: timedelta = WINDOW,
) -> "pl.DataFrame":
    """Each window's IEC 61400-26-1 category (time-based availability's information model).

    ``events``: ``turbine``, ``start``, ``end`` (null: ongoing), ``code``. ``windows``: the
    windows to classify, ``turbine`` and ``timestamp`` (the window's start). ``held``: the windows
    that hold data, ``turbine`` and ``timestamp``, or whether each of ``windows`` does (a boolean
    per row, in their order). ``codes``: code -> category (``[event_codes]``).

    A window gets the category of the event that covers the largest part of it (ties: the later
    category in :data:`EVENT_CATEGORIES`); an ongoing event covers everything after its start. A
    window no event covers is ``full_performance`` when it holds data, ``information_unavailable``
    when it does not. A code ``codes`` does not name is ``forced_outage`` (see
    :func:`unknown_codes` to report them). Returns ``turbine``, ``timestamp`` (naive UTC),
    ``category``, ``code`` (the deciding event's, null when none), in the order of ``windows``.
    """
    import polars as pl

    width_us = window // timedelta(microseconds=1)
    slots = windows.select(
        pl.col("turbine").cast(pl.String),
        naive_utc_expr(windows.schema["timestamp"]).alias("timestamp"),
    )
    # Whether each window holds data; ``held`` is often ``windows`` itself (every window held).
    if held is windows:
        slots = slots.with_columns(_held=pl.lit(True))
    elif isinstance(held, pl.Series):
        if held.len() != slots.height or held.dtype != pl.Boolean:
            raise ValueError(
                f"held is {held.len()} values of {held.dtype}; expected a Boolean per window "
                f"({slots.height})"
            )
        slots = slots.with_columns(_held=held)
    else:  # one integer key per (turbine, window): a hash-set lookup, not a join
        names = pl.Enum(pl.concat([slots["turbine"], held["turbine"].cast(pl.String)]).unique())

        def key(frame: "pl.DataFrame") -> "pl.Expr":
            at = naive_utc_expr(frame.schema["timestamp"]).dt.epoch("us") // width_us
            return at * 65_536 + pl.col("turbine").cast(pl.String).cast(names).to_physical()

        slots = slots.with_columns(_held=key(slots).is_in(held.select(key(held)).to_series()))
    rank = {name: i for i, name in enumerate(EVENT_CATEGORIES)}
    if slots.height and events.height:
        last_end = slots["timestamp"].max() + window  # type: ignore[operator]
        first_start = slots["timestamp"].min()
        end_dtype = events.schema["end"]
        spans = (
            events.select(
                pl.col("turbine").cast(pl.String),
                pl.col("code").cast(pl.String),
                naive_utc_expr(events.schema["start"], "start").alias("start"),
                (
                    naive_utc_expr(end_dtype, "end")
                    if isinstance(end_dtype, pl.Datetime)
                    else pl.lit(None, dtype=pl.Datetime("us"))
                ).alias("end"),
            )
            .with_columns(pl.col("end").fill_null(pl.lit(last_end, dtype=pl.Datetime("us"))))
            .filter((pl.col("end") > first_start) & (pl.col("start") < last_end))
            .with_columns(
                pl.col("code")
                .replace_strict(dict(codes), default=UNKNOWN_CODE_CATEGORY, return_dtype=pl.String)
                .alias("category")
            )
            .with_columns(
                pl.col("category").replace_strict(rank, return_dtype=pl.Int32).alias("_rank"),
                # every window the event touches: from its start's window to its end's
                pl.datetime_ranges(
                    pl.col("start").dt.truncate(f"{width_us}us"),
                    pl.col("end") - pl.duration(microseconds=1),
                    interval=f"{width_us}us",
                    time_unit="us",
                ).alias("timestamp"),
            )
            .explode("timestamp")
            .with_columns(
                (
                    pl.min_horizontal(
                        pl.col("end"), pl.col("timestamp") + pl.duration(microseconds=width_us)
                    )
                    - pl.max_horizontal(pl.col("start"), pl.col("timestamp"))
                ).alias("_covered")
            )
            .filter(pl.col("_covered") > pl.duration(microseconds=0))
            .sort(["_covered", "_rank", "start", "code"], descending=True)
            .unique(["turbine", "timestamp"], keep="first")
            .select("turbine", "timestamp", "category", "code")
        )
    else:
        spans = pl.DataFrame(
            schema={
                "turbine": pl.String,
                "timestamp": pl.Datetime("us"),
                "category": pl.String,
                "code": pl.String,
            }
        )
    if spans.height:
        slots = slots.join(spans, on=["turbine", "timestamp"], how="left", maintain_order="left")
    else:
        slots = slots.with_columns(
            category=pl.lit(None, dtype=pl.String), code=pl.lit(None, dtype=pl.String)
        )
    return slots.with_columns(
        pl.when(pl.col("category").is_not_null())
        .then(pl.col("category"))
        .when(pl.col("_held").fill_null(False))
        .then(pl.lit(UNCOVERED_HELD))
        .otherwise(pl.lit(UNCOVERED_EMPTY))
        .alias("category")
    ).select("turbine", "timestamp", "category", "code")


# -- availability: how each category counts (IEC 61400-26-1) ---------------------------------------

#: The three classes of a category in time-based availability.
AVAILABILITY_CLASSES: tuple[str, ...] = ("operative", "non_operative", "excluded")
#: The default classification (IEC 61400-26-1): the first six categories are operative, the next
#: four non-operative; force majeure and missing information count in neither.
DEFAULT_AVAILABILITY: dict[str, tuple[str, ...]] = {
    "operative": EVENT_CATEGORIES[:6],
    "non_operative": EVENT_CATEGORIES[6:10],
    "excluded": EVENT_CATEGORIES[10:],
}
#: A window of this category loses production whatever its class (it ran, below its curve).
PARTIAL_PERFORMANCE = "partial_performance"
#: The farm's rows carry this in their ``turbine`` column (never a turbine id: ``TURBINE_ID``).
FARM = "*"


def check_classification(classes: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Category -> class (operative, non_operative, excluded) of a classification naming every
    category exactly once; ValueError naming what is missing, repeated or unknown."""
    where: dict[str, str] = {}
    for name, categories in classes.items():
        if name not in AVAILABILITY_CLASSES:
            raise ValueError(f"unknown class {name!r}; accepted: {', '.join(AVAILABILITY_CLASSES)}")
        for category in categories:
            check_event_category(category)
            if category in where:
                raise ValueError(
                    f"{category} is in both {where[category]} and {name}; each category belongs "
                    "to exactly one of operative, non_operative, excluded"
                )
            where[category] = name
    missing = [c for c in EVENT_CATEGORIES if c not in where]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} in none of operative, non_operative, excluded; each category "
            "belongs to exactly one (moving one means editing two lists)"
        )
    return {c: where[c] for c in EVENT_CATEGORIES}
