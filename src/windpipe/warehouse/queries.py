"""Every read of the target's ``signal`` and ``data`` that the API makes, as literal SQL for ADBC.

The API and the dashboard read the target over the same read-only ADBC pool they read the source
with (``windpipe.api.pool``), so these reads are SQL text that the API runs, not functions on
an engine. As in ``source.store``, the SQL is built from validated names and literals rendered
from parsed values only: no request text reaches the database.

Target timestamps are UTC instants (``timestamptz``). Every function takes naive-UTC or aware
datetimes, bounds are rendered as UTC instants, days are UTC days and window starts are returned
as naive UTC (``AT TIME ZONE 'UTC'``): the same answers whatever the session's TimeZone.
"""

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from windpipe.catalog import is_turbine_id

_SIGNAL = re.compile(r"[a-z_][a-z0-9_]{0,254}")

HAS_TABLES_SQL = (
    "SELECT (to_regclass('data') IS NOT NULL AND to_regclass('signal') IS NOT NULL) AS ready"
)
#: Every (turbine, signal) the target has registered.
SIGNALS_SQL = "SELECT turbine, name FROM signal ORDER BY turbine, name"


def _signal_literals(names: Sequence[str]) -> str:
    bad = [n for n in names if not _SIGNAL.fullmatch(n)]
    if bad or not names:
        raise ValueError(f"not signal names: {bad or 'none'}")
    return ", ".join(f"'{n}'" for n in names)


def _turbine_literals(turbines: Sequence[str]) -> str:
    bad = [t for t in turbines if not is_turbine_id(t)]
    if bad:
        raise ValueError(f"not turbine ids: {bad}")
    return ", ".join(f"'{t}'" for t in turbines) or "NULL"


def _moment(moment: datetime | date) -> str:
    """A UTC timestamptz literal (digits, '-', ':', 'T', '.', '+' only); naive means UTC."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return "'" + moment.isoformat() + "+00:00'::timestamptz"


#: A window start as naive UTC (Arrow ``timestamp[us]``), whatever the session's TimeZone.
_START = "\"timestamp\" AT TIME ZONE 'UTC'"
#: The UTC day of a window start.
_DAY = "(d.\"timestamp\" AT TIME ZONE 'UTC')::date"


def _range(start: datetime | date, end: datetime | date, alias: str = "d") -> str:
    return f'{alias}."timestamp" >= {_moment(start)} AND {alias}."timestamp" < {_moment(end)}'


def _turbines_condition(turbines: Sequence[str] | None) -> str:
    return "TRUE" if turbines is None else f"s.turbine IN ({_turbine_literals(turbines)})"


def aggregates_sql(
    signals: Sequence[str],
    start: datetime | date,
    end: datetime | date,
    *,
    turbines: Sequence[str] | None = None,
    ordered: bool = True,
) -> str:
    """Long rows ``turbine, timestamp, signal, value`` of ``signals`` in ``[start, end)``, by
    turbine then time: one index range per signal of ``unique (signal_id, timestamp)``.

    ``ordered=False``: in no order, for a caller that pivots and sorts them itself (a year of a
    farm is millions of rows, which PostgreSQL would sort on disk first)."""
    order = ' ORDER BY s.turbine, d."timestamp"' if ordered else ""
    return (
        f'SELECT s.turbine, d.{_START} AS "timestamp", s.name AS signal, d.value '  # noqa: S608
        "FROM data d JOIN signal s ON s.id = d.signal_id "
        f"WHERE s.name IN ({_signal_literals(signals)}) AND {_turbines_condition(turbines)} "
        f"AND {_range(start, end)}{order}"
    )


def latest_sql(signals: Sequence[str], *, turbines: Sequence[str] | None = None) -> str:
    """Each turbine's latest window of each of ``signals`` and its value (one index probe each)."""
    return (
        f'SELECT s.turbine, s.name AS signal, l.{_START} AS "timestamp", l.value '  # noqa: S608
        "FROM signal s CROSS JOIN LATERAL ("
        'SELECT d."timestamp", d.value FROM data d WHERE d.signal_id = s.id '
        'ORDER BY d."timestamp" DESC LIMIT 1) l '
        f"WHERE s.name IN ({_signal_literals(signals)}) AND {_turbines_condition(turbines)} "
        "ORDER BY s.turbine, s.name"
    )


def windows_per_day_sql(signals: Sequence[str], first: date, end: date) -> str:
    """Windows held per (turbine, UTC day) in ``[first, end)``: distinct window starts with a row
    of any of ``signals``."""
    return (
        f"SELECT s.turbine, {_DAY} AS day, "  # noqa: S608 - literals only
        'count(DISTINCT d."timestamp") AS windows '
        "FROM data d JOIN signal s ON s.id = d.signal_id "
        f"WHERE s.name IN ({_signal_literals(signals)}) AND {_range(first, end)} "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    )


def energy_per_day_sql(power_signal: str, first: date, end: date, window: timedelta) -> str:
    """Energy per (turbine, UTC day) in ``[first, end)`` in kWh: the windows' mean power (kW)
    times the window's length in hours, over the windows held (a missing window adds nothing)."""
    hours = window.total_seconds() / 3600
    return (
        f"SELECT s.turbine, {_DAY} AS day, "  # noqa: S608 - literals only
        f"sum(d.value) * {hours!r} AS energy_kwh, count(*) AS windows "
        "FROM data d JOIN signal s ON s.id = d.signal_id "
        f"WHERE s.name IN ({_signal_literals([power_signal])}) AND {_range(first, end)} "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    )


def _bucket_start(column: str, bucket: timedelta) -> str:
    """The start of ``column``'s bucket of ``bucket`` length, aligned on the Unix epoch (so a day
    starts at UTC midnight, an hour on the hour)."""
    seconds = int(bucket.total_seconds())
    if seconds <= 0:
        raise ValueError(f"not a bucket length: {bucket}")
    return (
        f"('epoch'::timestamp + floor(extract(epoch FROM {column}) / {seconds}) "
        f"* interval '{seconds} seconds')"
    )


def series_sql(
    signals: Sequence[str],
    turbine: str,
    start: datetime | date,
    end: datetime | date,
    *,
    bucket: timedelta | None = None,
    lows: Sequence[str] = (),
    highs: Sequence[str] = (),
) -> str:
    """Rows ``timestamp, signal, value`` of one turbine's ``signals`` in ``[start, end)``.

    Without ``bucket`` every window as it is. With one, a row per (bucket, signal) over the
    windows held in it: the lowest value of the ``lows`` signals (minima), the highest of the
    ``highs`` (maxima) and the mean of the others, so a band drawn from them keeps every peak."""
    names = _signal_literals(signals)
    where = (
        f"WHERE s.name IN ({names}) AND s.turbine IN ({_turbine_literals([turbine])}) "
        f"AND {_range(start, end)}"
    )
    if bucket is None:
        return (
            f'SELECT d.{_START} AS "timestamp", s.name AS signal, d.value '  # noqa: S608
            f"FROM data d JOIN signal s ON s.id = d.signal_id {where}"
        )
    low = f"s.name IN ({_signal_literals(lows)})" if lows else "FALSE"
    high = f"s.name IN ({_signal_literals(highs)})" if highs else "FALSE"
    return (
        f'SELECT {_bucket_start("d.timestamp", bucket)} AS "timestamp", '  # noqa: S608
        "s.name AS signal, "
        f"CASE WHEN {low} THEN min(d.value) WHEN {high} THEN max(d.value) "
        "ELSE avg(d.value) END AS value "
        f"FROM data d JOIN signal s ON s.id = d.signal_id {where} GROUP BY 1, 2"
    )


def signal_values_sql(
    signal: str,
    start: datetime | date,
    end: datetime | date,
    *,
    turbines: Sequence[str] | None = None,
) -> str:
    """Rows ``turbine, timestamp, value`` of one signal in ``[start, end)`` (``turbines``: None,
    all): one index range per turbine of ``unique (signal_id, timestamp)``, in no order.

    Two signals are paired per window by the caller (a join on ``turbine, timestamp``), not by a
    join of ``data`` with itself: without statistics on freshly loaded months PostgreSQL merged
    such a join on the turbine alone and filtered the timestamps, quadratic in the windows (a
    year of 10 turbines ran for over 10 minutes)."""
    return (
        f'SELECT s.turbine, d.{_START} AS "timestamp", d.value '  # noqa: S608 - literals only
        "FROM data d JOIN signal s ON s.id = d.signal_id "
        f"WHERE s.name = {_signal_literals([signal])} AND {_turbines_condition(turbines)} "
        f"AND {_range(start, end)}"
    )


#: Whether the target holds the daily figures' tables (``windpipe kpis`` creates them).
HAS_KPIS_SQL = (
    "SELECT (to_regclass('turbine_day_kpi') IS NOT NULL "
    "AND to_regclass('turbine_day_loss') IS NOT NULL) AS ready"
)


def _days(first: date, last: date, turbines: Sequence[str] | None) -> str:
    where = f"day >= '{first.isoformat()}'::date AND day <= '{last.isoformat()}'::date"
    if turbines is not None:
        where += f" AND turbine IN ({_turbine_literals(turbines)})"
    return where


def kpis_sql(first: date, last: date, *, turbines: Sequence[str] | None = None) -> str:
    """The stored daily figures (every column of ``turbine_day_kpi``) of ``turbines`` (None: all)
    on the UTC days ``[first, last]``, by turbine then day."""
    return (
        "SELECT * FROM turbine_day_kpi "  # noqa: S608 - literals only
        f"WHERE {_days(first, last, turbines)} ORDER BY turbine, day"
    )


def kpi_losses_sql(first: date, last: date, *, turbines: Sequence[str] | None = None) -> str:
    """The stored lost production per (turbine, day, category) on ``[first, last]``."""
    return (
        "SELECT turbine, day, category, lost_kwh FROM turbine_day_loss "  # noqa: S608
        f"WHERE {_days(first, last, turbines)} ORDER BY turbine, day, category"
    )


#: Whether the target has its flags' table (migration t0009; an older target has no flags).
HAS_FLAGS_SQL = "SELECT to_regclass('window_flag') IS NOT NULL AS ready"


def flags_sql(
    start: datetime | date, end: datetime | date, *, turbines: Sequence[str] | None = None
) -> str:
    """The stored flags of windows starting in ``[start, end)``: ``turbine``, ``timestamp``
    (naive UTC), ``flag``, ``signal`` (null for a flag about the whole window), by turbine, time,
    flag and signal."""
    where = "TRUE" if turbines is None else f"f.turbine IN ({_turbine_literals(turbines)})"
    return (
        f'SELECT f.turbine, f.{_START} AS "timestamp", f.flag, '  # noqa: S608 - literals only
        "NULLIF(f.signal, '') AS signal FROM window_flag f "
        f"WHERE {where} AND {_range(start, end, 'f')} "
        'ORDER BY f.turbine, f."timestamp", f.flag, f.signal'
    )


def flag_days_sql(first: date, last: date) -> str:
    """The (turbine, day)s ``windpipe flags`` flagged on the UTC days ``[first, last]``."""
    return (
        "SELECT turbine, day, flags FROM flag_day "  # noqa: S608 - literals only
        f"WHERE {_days(first, last, None)} ORDER BY turbine, day"
    )


def flag_counts_sql(start: datetime | date, end: datetime | date) -> str:
    """The stored flags of windows starting in ``[start, end)`` counted per turbine, UTC day and
    flag: ``turbine``, ``day``, ``flag``, ``flags`` (one per flagged window and signal) and
    ``windows`` (distinct windows)."""
    return (
        f"SELECT f.turbine, (f.{_START})::date AS day, f.flag, "  # noqa: S608 - literals only
        'count(*)::bigint AS flags, count(DISTINCT f."timestamp")::bigint AS windows '
        f"FROM window_flag f WHERE {_range(start, end, 'f')} "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
