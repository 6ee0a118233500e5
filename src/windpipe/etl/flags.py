"""Compute and store the quality flags of a range of UTC days (``windpipe flags``).

The windows are read from the target (``warehouse.reads``), the events from the API
(``ApiClient.events``), the flags computed by ``analytics.flags`` and written by
``warehouse.flags.replace_flags``: one transaction for the range, per (turbine, day).
"""

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl
from sqlalchemy import Engine

from windpipe.analytics.flags import FlagConfig, window_flags
from windpipe.analytics.power_curve import Site
from windpipe.analytics.windows import wide_windows
from windpipe.catalog import DAY, day_start, window_categories
from windpipe.etl.extract import ApiClient
from windpipe.warehouse.flags import replace_flags
from windpipe.warehouse.reads import aggregates_frame
from windpipe.warehouse.store import ensure_schema

#: The icing reference (IEA Wind Task 19) is taken from the windows above +3 degC of this many
#: days before the range, and the range itself.
ICING_REFERENCE = timedelta(days=365)


@dataclass
class FlagRun:
    """What a run flagged: rows written, and counts per flag and per turbine."""

    first: date
    last: date
    windows: int = 0
    written: int = 0
    per_flag: Counter[str] = field(default_factory=Counter)
    per_turbine: Counter[str] = field(default_factory=Counter)


def run_flags(
    *,
    client: ApiClient,
    engine: Engine,
    turbines: list[str],
    first: date,
    last: date,
    config: FlagConfig,
    sites: Mapping[str, Site],
    codes: Mapping[str, str],
) -> FlagRun:
    """Flag every window of ``turbines`` on the UTC days ``[first, last]`` and replace their
    stored flags. Windows just outside the range are read too, so a flatline or icing run across
    its edges is seen whole."""
    margin = max(1, math.ceil(config.flatline_windows * config.window / DAY))
    lo, hi = first - timedelta(days=margin), last + timedelta(days=margin)
    ensure_schema(engine)
    with engine.connect() as conn:
        long = aggregates_frame(conn, lo - ICING_REFERENCE, hi, config.signals)
    long = long.filter(pl.col("turbine").is_in(turbines))
    reference = wide_windows(long, config.signals)
    windows = reference.filter(pl.col("timestamp") >= day_start(lo))
    events = client.events(day_start(lo), day_start(hi) + DAY, turbines)
    held = windows.select("turbine", "timestamp")
    categories = window_categories(events, held, held, codes, window=config.window)
    flags = window_flags(windows, categories, sites, config, reference=reference)
    written = replace_flags(engine, flags, turbines=turbines, first=first, last=last)
    inside = flags.filter(
        (pl.col("timestamp") >= day_start(first)) & (pl.col("timestamp") < day_start(last) + DAY)
    )
    return FlagRun(
        first=first,
        last=last,
        windows=windows.filter(
            (pl.col("timestamp") >= day_start(first))
            & (pl.col("timestamp") < day_start(last) + DAY)
        ).height,
        written=written,
        per_flag=Counter(inside["flag"].to_list()),
        per_turbine=Counter(inside["turbine"].to_list()),
    )
