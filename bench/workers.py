"""The API with 1 and with 2 uvicorn workers (WINDPIPE_API_WORKERS), side by side in one run.

    uv run python bench/workers.py              # 10 turbines x 3 days @ 1 Hz, 5 rounds
    uv run python bench/workers.py --days 2 --runs 3

One embedded PostgreSQL in a temporary directory holds the source and the target; two
``windpipe api`` processes run at once on free loopback ports, one with ``WINDPIPE_API_WORKERS=1``
and one with ``2``, over the same source. Each round backfills the same farm days through one API,
then through the other (so load on the machine falls on both alike), with ``etl.pipeline.run_range``
in this process:

- one backfill of all ten turbines (what ``windpipe backfill`` does: up to 2 requests in flight);
- two backfills at once of five turbines each (what two concurrent Dagster runs do).

Figures are samples read per second (median of the rounds) and the ratio 2 workers / 1 worker.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import database_url, make_engine, stop_embedded
from windpipe.settings import load_settings
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.testing import ApiProcess, start_api

VARIABLES = ["wind_speed", "power"]
AGGREGATIONS = ["mean", "min", "max", "std"]
FARM = farm(10)
TURBINES = [spec.id for spec in FARM]
FIRST = date(2026, 2, 2)


def _seed(source_url: URL, days: int) -> None:
    source = make_engine(source_url)
    try:
        ensure_source_schema(source)
        start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
        done = seed_source(source, start, start + timedelta(days=days), turbines=FARM, freq="1s")
        print(f"seeded {done.rows_written:,} rows (10 turbines x {days} days @ 1 Hz) "
              f"in {done.seconds:.1f} s; {os.cpu_count()} CPUs")  # fmt: skip
        with source.connect() as conn:  # fresh statistics, as after any bulk load
            conn.execute(text("ANALYZE data"))
            conn.commit()
    finally:
        source.dispose()


def backfill(api_url: str, target_url: URL, last: date, groups: Sequence[Sequence[str]]) -> float:
    """Samples per second of ``run_range`` over the farm days, one concurrent run per group."""

    def one(turbines: Sequence[str]) -> int:
        engine = make_engine(target_url)
        try:
            with ApiClient(api_url) as client:
                results = run_range(
                    FIRST,
                    last,
                    client=client,
                    engine=engine,
                    variables=VARIABLES,
                    aggregations=AGGREGATIONS,
                    turbines=turbines,
                )
        finally:
            engine.dispose()
        return sum(r.rows_read for r in results)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        samples = sum(pool.map(one, groups))
    return samples / (time.perf_counter() - began)


def main(argv: Sequence[str] | None = None) -> None:
    """Seed, start both APIs, then time the backfills through each, interleaved."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=3, help="days of the farm at 1 Hz")
    parser.add_argument("--runs", type=int, default=5, help="rounds of each case")
    args = parser.parse_args(argv)
    last = FIRST + timedelta(days=args.days - 1)
    cases = {
        "one backfill, 10 turbines": [TURBINES],
        "two at once, 5 turbines each": [TURBINES[:5], TURBINES[5:]],
    }

    data_dir = Path(tempfile.mkdtemp(prefix="windpipe-bench-workers-"))
    apis: dict[int, ApiProcess] = {}
    try:
        settings = load_settings(data_dir=data_dir, _env_file=None)
        source_url, target_url = database_url(settings, "source"), database_url(settings, "target")
        _seed(source_url, args.days)
        for workers in (1, 2):
            apis[workers] = start_api(
                source_url, wait=60, env={"WINDPIPE_API_WORKERS": str(workers)}
            )
        rates: dict[tuple[str, int], list[float]] = {}
        for name, groups in cases.items():
            for api in apis.values():  # warm-up: signals registered, pages cached
                backfill(api.url, target_url, last, groups)
            for _ in range(args.runs):
                for workers, api in apis.items():
                    rate = backfill(api.url, target_url, last, groups)
                    rates.setdefault((name, workers), []).append(rate)

        print(f"\n== backfill {FIRST}..{last}, 10 turbines @ 1 Hz, through `windpipe api` "
              f"(median of {args.runs}; samples read per second)")  # fmt: skip
        print(f"{'case':<32} {'1 worker':>14} {'2 workers':>14} {'2 / 1':>7}")
        for name in cases:
            one = statistics.median(rates[(name, 1)])
            two = statistics.median(rates[(name, 2)])
            spread = " ".join(
                f"[{min(rates[(name, w)]) / 1e6:.2f}-{max(rates[(name, w)]) / 1e6:.2f} M]"
                for w in (1, 2)
            )
            print(f"{name:<32} {one / 1e6:>12.2f} M {two / 1e6:>12.2f} M {two / one:>6.2f}x  "
                  f"range {spread}")  # fmt: skip
    finally:
        for api in apis.values():
            api.stop()
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
