"""The farm's daily figures: read the target's windows and the events (through the API),
compute (``analytics.availability``), store (``warehouse.store.replace_kpis``).

What ``windpipe kpis`` runs, and what Dagster's assets of the daily figures are meant to call.
"""

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from windpipe.analytics.availability import DailyKpis, daily_kpis
from windpipe.analytics.power_curve import CurveConfig
from windpipe.analytics.windows import POWER, WIND_SPEED, joined_windows, mean_of
from windpipe.catalog import (
    DAY,
    WINDOW,
    Turbine,
    day_start,
    polars_duration,
    unknown_codes,
    utc_midnight,
    window_categories,
)
from windpipe.etl.extract import ApiClient
from windpipe.warehouse.flags import flags_frame
from windpipe.warehouse.reads import has_flag_table, window_means
from windpipe.warehouse.store import replace_kpis


@dataclass(frozen=True)
class KpiRun:
    """What one computation of the daily figures read and wrote."""

    figures: DailyKpis
    #: Events read through the API, and the codes among them ``[event_codes]`` does not name.
    events: int
    unknown_codes: list[str]
    #: Rows of ``turbine_day_kpi`` written.
    rows: int


def expected_windows(
    turbines: Sequence[str], first: date, last: date, window: timedelta = WINDOW
) -> pl.DataFrame:
    """Every window of ``turbines`` on the days ``[first, last]``: ``turbine``, ``timestamp``."""
    starts = pl.datetime_range(
        day_start(first),
        day_start(last) + DAY,
        interval=polars_duration(window),
        closed="left",
        time_unit="us",
        eager=True,
    ).alias("timestamp")
    return pl.DataFrame({"turbine": list(turbines)}, schema={"turbine": pl.String}).join(
        starts.to_frame(), how="cross"
    )


def fetch_events(
    client: ApiClient, turbines: Sequence[str], first: date, last: date, *, max_days: int = 366
) -> pl.DataFrame:
    """The events of ``turbines`` overlapping the days ``[first, last]``, in requests of at most
    ``max_days`` days (an event spanning two requests is kept once)."""
    frames = []
    lo = first
    while lo <= last:
        hi = min(last, lo + timedelta(days=max_days - 1))
        frames.append(client.events(utc_midnight(lo), utc_midnight(hi) + DAY, list(turbines)))
        lo = hi + timedelta(days=1)
    return pl.concat(frames).unique(["turbine", "start", "code"], keep="first", maintain_order=True)


def events_overlapping(events: pl.DataFrame, first: date, last: date) -> pl.DataFrame:
    """The rows of ``events`` (:func:`fetch_events`'s) overlapping the days ``[first, last]``, as
    ``/events`` selects them: a start before the range's end, an end (null: ongoing) after its
    start."""
    lo, hi = utc_midnight(first), utc_midnight(last) + DAY
    return events.filter((pl.col("start") < hi) & (pl.col("end").is_null() | (pl.col("end") > lo)))


def until_now(events: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """``events`` with each ongoing one (``end`` null) ending at ``now``: a stop still going on
    has lasted until now, and says nothing of the windows after it (they have not happened)."""
    end = events.schema["end"]
    stamp = pl.lit(now.astimezone(UTC)).dt.replace_time_zone(None)
    if isinstance(end, pl.Datetime) and end.time_zone is not None:
        stamp = stamp.dt.replace_time_zone("UTC").dt.convert_time_zone(end.time_zone)
    return events.with_columns(pl.col("end").fill_null(stamp.cast(end)))


def compute_kpis(
    windows: pl.DataFrame,
    events: pl.DataFrame,
    fleet: Sequence[Turbine],
    first: date,
    last: date,
    *,
    codes: Mapping[str, str],
    classes: Mapping[str, str],
    window: timedelta = WINDOW,
    flags: pl.DataFrame | None = None,
    curve: CurveConfig | None = None,
    reference_days: int | None = None,
    now: datetime | None = None,
) -> DailyKpis:
    """The daily figures of ``fleet`` on ``[first, last]`` from its windows (``power``,
    ``wind_speed``, the density's inputs) and events: each expected window categorised
    (``catalog.window_categories``), then ``analytics.availability.daily_kpis`` (``flags``: the
    stored quality flags, left out of the measured reference curve; ``reference_days``: each
    day's measured curve over it and those days before, else one over the whole range; ``now``:
    an ongoing event covers the windows up to that instant, not the ones still to come, which
    are then ``information_unavailable`` like any window without data; None: to the range's end).
    """
    if now is not None:
        events = until_now(events, now)
    expected = expected_windows([t.id for t in fleet], first, last, window)
    # every expected window's row (null where the target holds none): then the windows and their
    # categories are the same rows, and what holds data is a mask, not a look-up
    windows = joined_windows(
        expected, windows.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    )
    held = windows["power"].is_not_null()
    categories = window_categories(events, expected, held, codes, window=window)
    return daily_kpis(
        windows,
        categories,
        fleet,
        classes,
        window=window,
        flags=flags,
        curve=curve,
        reference_days=reference_days,
    )


def run_kpis(
    first: date,
    last: date,
    *,
    client: ApiClient,
    engine: Engine,
    fleet: Sequence[Turbine],
    codes: Mapping[str, str],
    classes: Mapping[str, str],
    window: timedelta = WINDOW,
    max_days: int = 366,
    history_days: int | None = None,
    curve: CurveConfig | None = None,
    now: datetime | None = None,
) -> KpiRun:
    """Compute ``fleet``'s daily figures on ``[first, last]`` and replace them in the target (one
    transaction): the windows read from the target, the events through the API. With
    ``history_days`` (``[availability] reference_days``, what the CLI and Dagster pass), each
    day's measured reference curve is fitted over that day and the ``history_days`` days before
    it, those days read before ``first`` and only ``[first, last]`` stored: a day's figures do
    not depend on the range it was computed in. Without, one curve over ``[first, last]``. An
    ongoing event covers the windows up to ``now`` (default: the clock), not the rest of today
    nor the days after it.

    The measured reference curve is the IEC 61400-12-1 curve (``curve``: ``[power_curve]``,
    ``CurveConfig.of(settings)``; default: its defaults): the windows are read with the density's
    inputs (and the coverage counts where the ETL writes them), and the quality flags stored in
    ``window_flag`` leave windows out of it; days never flagged (``windpipe flags``) leave none
    out."""
    ids = [t.id for t in fleet]
    config = curve if curve is not None else CurveConfig(window=window)
    lo = first - timedelta(days=max(0, history_days or 0))
    others = [c for c in config.signals if c not in (mean_of(POWER), mean_of(WIND_SPEED))]
    with ThreadPoolExecutor(max_workers=1) as pool:
        # the API (another process) reads the events while the target's windows are read here
        pending = pool.submit(fetch_events, client, ids, lo, last, max_days=max_days)
        with engine.connect() as conn:
            windows = window_means(conn, lo, last, ids, others=others)
            flags = flags_frame(conn, lo, last, turbines=ids) if has_flag_table(conn) else None
        events = pending.result()
    figures = compute_kpis(
        windows,
        events,
        fleet,
        lo,
        last,
        codes=codes,
        classes=classes,
        window=window,
        flags=flags,
        curve=config,
        reference_days=history_days,
        now=now if now is not None else datetime.now(UTC),
    )
    if lo < first:
        figures = DailyKpis(
            kpis=figures.kpis.filter(pl.col("day") >= first),
            losses=figures.losses.filter(pl.col("day") >= first),
        )
        events = events_overlapping(events, first, last)  # those of the days stored
    rows = replace_kpis(engine, first, last, figures.kpis, figures.losses, turbines=ids)
    return KpiRun(figures, events.height, unknown_codes(events, codes), rows)
