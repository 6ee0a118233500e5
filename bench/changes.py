"""Change detection's figures, side by side in one run.

    uv run python bench/changes.py             # 10 turbines x 30 days at 1 Hz (~26 M samples)
    uv run python bench/changes.py --days 5    # a smaller source, for a quick look

One embedded PostgreSQL in a temporary directory holds the source and the target; ``windpipe api``
runs as its own process on a free loopback port. Figures:

- the change sensor's pass (one ``/fingerprints`` request over the look-back for every turbine,
  one query of ``day_load``, the comparison), beside what computing the same fingerprints from the
  raw rows would cost (count and hash sum per (turbine, day), one SQL over the same days);
- the cost of one changed hour: the sensor finds the one stale (turbine, day), and the run that
  reloads it (``run_range`` of that turbine and day), beside a run of the whole farm's day;
- what the fingerprint triggers cost the writers: seeding one farm day at 1 Hz into a table with
  them and into one without (the same rows, interleaved runs).
"""

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from windpipe.etl.changes import Stale, find_stale
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import database_url, ensure_database, make_engine, stop_embedded
from windpipe.settings import load_settings
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.testing import start_api

VARIABLES = ["wind_speed", "power"]
AGGREGATIONS = ["mean", "min", "max", "std"]
TURBINES = [spec.id for spec in farm(10)]
FIRST = date(2026, 1, 1)


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _median(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _trigger_cost(source: Engine, bare: Engine, runs: int) -> tuple[float, float]:
    """Median seconds to seed one farm day at 1 Hz with the triggers, and without them."""
    day = FIRST - timedelta(days=1)
    with_, without = [], []
    for _ in range(runs):
        for engine, times in ((source, with_), (bare, without)):
            began = time.perf_counter()
            seed_source(
                engine,
                _utc(day),
                _utc(day + timedelta(days=1)),
                turbines=farm(10),
                freq="1s",
                seed=3,
            )
            times.append(time.perf_counter() - began)
    return statistics.median(with_), statistics.median(without)


def main() -> None:
    """Seed, load, then measure and print each figure."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of the farm at 1 Hz")
    parser.add_argument("--runs", type=int, default=15, help="runs of each timed pass")
    args = parser.parse_args()
    last = FIRST + timedelta(days=args.days - 1)
    data_dir = Path(tempfile.mkdtemp(prefix="windpipe-bench-changes-"))
    try:
        settings = load_settings(data_dir=data_dir, _env_file=None)
        source_url, target_url = database_url(settings, "source"), database_url(settings, "target")
        source, target = make_engine(source_url), make_engine(target_url)
        ensure_source_schema(source)
        ensure_database(source_url, "bench_bare")
        bare = make_engine(source_url.set(database="bench_bare"))
        ensure_source_schema(bare)
        with bare.begin() as conn:
            for event in ("insert", "delete", "update", "truncate"):
                conn.execute(text(f"DROP TRIGGER windpipe_fingerprint_{event} ON data"))
        print(f"== seeding {len(TURBINES)} turbines x {args.days} days at 1 Hz")
        began = time.perf_counter()
        seeded = seed_source(
            source,
            _utc(FIRST),
            _utc(last + timedelta(days=1)),
            turbines=farm(10),
            freq="1s",
            seed=11,
        )
        print(f"   {seeded.rows_written:,} samples in {time.perf_counter() - began:.1f} s")
        api = start_api(source_url, wait=60)
        try:
            with ApiClient(api.url) as client:
                began = time.perf_counter()
                run_range(
                    FIRST,
                    last,
                    client=client,
                    engine=target,
                    variables=VARIABLES,
                    aggregations=AGGREGATIONS,
                    turbines=TURBINES,
                )
                print(f"   loaded in {time.perf_counter() - began:.1f} s")

                def sensor_pass() -> list[Stale]:
                    return find_stale(
                        client,
                        target,
                        TURBINES,
                        FIRST,
                        last,
                        now=datetime.now(UTC),
                        close_margin=timedelta(minutes=2),
                        window=timedelta(minutes=10),
                    )

                assert sensor_pass() == [], "nothing changed yet"
                pass_s = _median(args.runs, sensor_pass)

                def recompute() -> None:
                    with source.connect() as conn:
                        conn.execute(
                            text(
                                "SELECT turbine, (\"timestamp\" AT TIME ZONE 'UTC')::date, "
                                "count(*), "
                                "sum(hash_record_extended(r, 0)::numeric) FROM data r "
                                'WHERE "timestamp" >= :lo AND "timestamp" < :hi GROUP BY 1, 2'
                            ),
                            {"lo": _utc(FIRST), "hi": _utc(last + timedelta(days=1))},
                        ).all()

                recompute_s = _median(max(1, args.runs // 5), recompute)

                # One re-calibrated hour of one turbine.
                day, turbine = FIRST + timedelta(days=args.days // 2), TURBINES[3]
                noon = _utc(day) + timedelta(hours=12)
                began = time.perf_counter()
                with source.begin() as conn:
                    conn.execute(
                        text(
                            "UPDATE data SET power = power * 1.02 WHERE turbine = :t "
                            'AND "timestamp" >= :lo AND "timestamp" < :hi'
                        ),
                        {"t": turbine, "lo": noon, "hi": noon + timedelta(hours=1)},
                    )
                update_s = time.perf_counter() - began
                stale = sensor_pass()
                assert [(s.turbine, s.day) for s in stale] == [(turbine, day)], stale
                began = time.perf_counter()
                run_range(
                    day,
                    day,
                    client=client,
                    engine=target,
                    variables=VARIABLES,
                    aggregations=AGGREGATIONS,
                    turbines=[turbine],
                )
                reload_s = time.perf_counter() - began
                assert sensor_pass() == []
                farm_day_s = _median(
                    3,
                    lambda: run_range(
                        day,
                        day,
                        client=client,
                        engine=target,
                        variables=VARIABLES,
                        aggregations=AGGREGATIONS,
                        turbines=TURBINES,
                    ),
                )
        finally:
            api.stop()
        with_s, without_s = _trigger_cost(source, bare, max(3, args.runs // 5))
        cells = len(TURBINES) * args.days
        print(
            f"\n== change detection, {len(TURBINES)} turbines x {args.days} days at 1 Hz "
            f"({seeded.rows_written:,} samples)"
        )
        print(
            f"sensor pass ({cells} (turbine, day)s)       {pass_s * 1000:8.1f} ms   "
            f"(target < 1000 ms: {1.0 / pass_s:.0f}x headroom)"
        )
        print(
            f"same fingerprints from the raw rows   {recompute_s * 1000:8.1f} ms   "
            f"({recompute_s / pass_s:.0f}x the pass)"
        )
        print(f"UPDATE of one hour (3,600 samples)   {update_s * 1000:8.1f} ms")
        print(
            f"reload of the stale (turbine, day)    {reload_s * 1000:8.1f} ms   "
            f"(whole farm day: {farm_day_s * 1000:.0f} ms, {farm_day_s / reload_s:.1f}x)"
        )
        print(
            f"seed 1 farm day @ 1 Hz, triggers     {with_s:8.2f} s    "
            f"(without: {without_s:.2f} s, +{100 * (with_s / without_s - 1):.0f} %)"
        )
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
