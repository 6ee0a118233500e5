"""The farm's daily figures beside the aggregation they are computed from, in one run.

    uv run python bench/kpis.py              # a year of a 10-turbine farm at 1 min (~5.3 M rows)
    uv run python bench/kpis.py --days 31    # a shorter period, for a quick look

One embedded PostgreSQL in a temporary directory holds the source and the target; ``windpipe api``
runs as its own process on a free loopback port. The source is seeded with the farm's samples and
a few hundred events (stops, maintenance, derating, an unknown code). Then, in this process:

- the aggregation (ETL) of the period: ``etl.backfill.run_backfill``, as ``windpipe backfill``
  runs it (whole months by the bulk path), every turbine's wind speed and power to 10-minute
  mean, min, max and std;
- the daily figures of the same period: ``etl.kpis.run_kpis``, as ``windpipe kpis`` runs it (each
  day's measured curve over it and ``[availability] reference_days`` before; the target's
  windows read, the events read through the API, computed, stored), and apart the computation
  alone (``compute_kpis`` on frames already in memory), with each day's curve and with one curve
  over the period (the computation before each day had its own).

The last line is the ratio: the figures' wall time as a share of the ETL's.
"""

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from windpipe.analytics.power_curve import CurveConfig
from windpipe.catalog import Turbine
from windpipe.etl.backfill import run_backfill
from windpipe.etl.extract import ApiClient
from windpipe.etl.kpis import compute_kpis, fetch_events, run_kpis
from windpipe.postgres import database_url, make_engine, stop_embedded
from windpipe.settings import AvailabilityConfig, load_settings
from windpipe.source.events import import_events
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.testing import start_api
from windpipe.warehouse.reads import window_means

FIRST = date(2025, 1, 1)
POWER_AND_SPEED = ("power_mean", "wind_speed_mean")
CODES = {
    "101": "scheduled_maintenance",
    "205": "forced_outage",
    "310": "requested_shutdown",
    "600": "partial_performance",
}


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _events(path: Path, turbines: Sequence[str], first: date, days: int) -> int:
    """About two events a week per turbine, one code in twenty unknown; returns how many."""
    rng = random.Random(3)
    lines = ["turbine,start,end,code,message"]
    for turbine in turbines:
        moment = _utc(first)
        end = _utc(first) + timedelta(days=days)
        while True:
            moment += timedelta(hours=rng.expovariate(1 / 84))
            if moment >= end:
                break
            length = timedelta(minutes=rng.randint(7, 600))
            code = rng.choice([*CODES, "999"] if rng.random() < 0.05 else list(CODES))
            stop = moment + length
            lines.append(f"{turbine},{moment:%Y-%m-%dT%H:%M:%SZ},{stop:%Y-%m-%dT%H:%M:%SZ},{code},")
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def main(argv: Sequence[str] | None = None) -> None:
    """Seed, serve, aggregate the period, compute its daily figures; print both and the ratio."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--days", type=int, default=365, help="days of the period (from 2025-01-01)"
    )
    parser.add_argument("--turbines", type=int, default=10, help="turbines of the farm")
    parser.add_argument("--freq", default="1min", help="sampling interval of the seed")
    args = parser.parse_args(argv)
    last = FIRST + timedelta(days=args.days - 1)

    data_dir = Path(tempfile.mkdtemp(prefix="windpipe-bench-kpis-"))
    try:
        settings = load_settings(data_dir=data_dir, _env_file=None)
        source_url, target_url = database_url(settings, "source"), database_url(settings, "target")
        specs = farm(args.turbines)
        ids = [s.id for s in specs]
        source = make_engine(source_url)
        ensure_source_schema(source)
        seeded = seed_source(
            source, _utc(FIRST), _utc(last) + timedelta(days=1), turbines=specs, freq=args.freq
        )
        events = _events(data_dir / "events.csv", ids, FIRST, args.days)
        import_events(data_dir / "events.csv", engine=source)
        with source.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
        source.dispose()
        print(
            f"== {args.turbines} turbines, {FIRST}..{last} at {args.freq}: "
            f"{seeded.rows_written:,} samples, {events:,} events"
        )
        api = start_api(source_url, wait=60)
        target = make_engine(target_url)
        try:
            with ApiClient(api.url, timeout=300) as client:
                began = time.perf_counter()
                run_backfill(
                    FIRST,
                    last,
                    client=client,
                    engine=target,
                    variables=["wind_speed", "power"],
                    aggregations=["mean", "min", "max", "std"],
                    turbines=ids,
                )
                etl = time.perf_counter() - began
                fleet = [Turbine(id=t, rated_power_kw=2050.0) for t in ids]
                classes = AvailabilityConfig().classes
                history = AvailabilityConfig().reference_days
                began = time.perf_counter()
                run = run_kpis(
                    FIRST,
                    last,
                    client=client,
                    engine=target,
                    fleet=fleet,
                    codes=CODES,
                    classes=classes,
                    history_days=history,  # as `windpipe kpis` and Dagster compute
                )
                figures = time.perf_counter() - began
                began = time.perf_counter()
                with target.connect() as conn:
                    # as run_kpis reads them: speed, power and the reference curve's inputs
                    others = [c for c in CurveConfig().signals if c not in POWER_AND_SPEED]
                    windows = window_means(conn, FIRST, last, ids, others=others)
                read = time.perf_counter() - began
                began = time.perf_counter()
                found = fetch_events(client, ids, FIRST, last)
                fetched = time.perf_counter() - began
                compute = {}
                for name, days in (("each day's curve", history), ("one curve", None)):
                    began = time.perf_counter()
                    compute_kpis(
                        windows,
                        found,
                        fleet,
                        FIRST,
                        last,
                        codes=CODES,
                        classes=classes,
                        reference_days=days,
                    )
                    compute[name] = time.perf_counter() - began
        finally:
            api.stop()
            target.dispose()
        print(f"{'aggregation (ETL, run_backfill)':>44}: {etl:8.2f} s")
        print(
            f"{'daily figures (run_kpis: read, compute, store)':>44}: {figures:8.2f} s "
            f"({run.rows:,} turbine-days, {run.events:,} events)"
        )
        for name, seconds in compute.items():
            label = f"the computation alone, {name}"
            print(f"{label:>44}: {seconds:8.2f} s ({windows.height:,} windows)")
        print(f"{'the windows read from the target alone':>44}: {read:8.2f} s")
        print(f"{'the events read through the API alone':>44}: {fetched:8.2f} s")
        print(f"{'figures / ETL':>44}: {figures / etl:8.1%}")
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
