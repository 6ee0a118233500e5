"""Seeding time and API throughput per format, measured side by side in one run.

    uv run python bench/api.py     # seeds 10 days @ 1 min and 30 days @ 1 s, serves a 1 Hz day

It starts its own embedded PostgreSQL in a temporary directory and ``windpipe api`` as a separate
process on a free loopback port, so the numbers include real HTTP and real process boundaries.
"""

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow as pa
from sqlalchemy.engine import make_url

from windpipe.api.pool import ReadOnlyPool
from windpipe.postgres import database_url, libpq_conninfo, make_engine, stop_embedded
from windpipe.settings import load_settings
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.source.store import select_range_sql
from windpipe.testing import api_process

HZ_START = datetime(2025, 1, 1, tzinfo=UTC)


def count_rows(fmt: str, body: bytes) -> int:
    if fmt == "arrow":
        return pa.ipc.open_stream(body).read_all().num_rows
    if fmt == "csv":
        return body.count(b"\n") - 1
    return body.count(b'"timestamp"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days-1s", type=int, default=30, help="days of 1 s data to seed")
    parser.add_argument("--repeat", type=int, default=7, help="requests per format (best kept)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="windpipe-bench-") as tmp:
        settings = load_settings(data_dir=Path(tmp), _env_file=None)
        url = database_url(settings, "source")
        engine = make_engine(url)
        ensure_source_schema(engine)
        try:
            minute_start = datetime(2024, 1, 1, tzinfo=UTC)
            seeded_min = seed_source(engine, minute_start, minute_start + timedelta(days=10))
            seeded_sec = seed_source(
                engine, HZ_START, HZ_START + timedelta(days=args.days_1s), freq="1s"
            )
            print("== seeding (binary COPY, one transaction per day)")
            for label, res in (
                ("10 days @ 1 min", seeded_min),
                (f"{args.days_1s} days @ 1 s", seeded_sec),
            ):
                print(
                    f"{label:>18}: {res.rows_written:>11,} rows in {res.seconds:6.2f} s "
                    f"= {res.rows_written / res.seconds:>10,.0f} rows/s"
                )
            serve_and_measure(
                libpq_conninfo(url), url.render_as_string(hide_password=False), args.repeat
            )
        finally:
            engine.dispose()
            stop_embedded(Path(tmp))


def serve_and_measure(conninfo: str, source_url: str, repeat: int) -> None:
    with api_process(make_url(source_url)) as base:
        day = {
            "start": HZ_START.isoformat(),
            "end": (HZ_START + timedelta(days=1)).isoformat(),
            "variables": "wind_speed,power",
        }
        reader = ReadOnlyPool(conninfo)
        sql = select_range_sql(["wind_speed", "power"], HZ_START, HZ_START + timedelta(days=1))
        reader._query(sql)  # warm the connection
        best_db = min(_time(lambda: reader._query(sql)) for _ in range(repeat))
        reader.close()
        rows = 86_400
        print("\n== one 1 Hz day (86,400 rows x wind_speed, power), best of", repeat)
        print(f"{'source DB via ADBC (ceiling)':>30}: {rows / best_db:>12,.0f} rows/s")
        results = {}
        with httpx.Client(base_url=base, timeout=120) as client:
            for fmt in ("json", "csv", "arrow"):
                client.get("/data", params=day | {"format": fmt})  # warm the pool and caches
                times = []
                for _ in range(repeat):
                    began = time.perf_counter()
                    body = client.get("/data", params=day | {"format": fmt}).content
                    times.append(time.perf_counter() - began)
                    assert count_rows(fmt, body) == rows, fmt
                results[fmt] = rows / min(times)
                label = "API " + fmt
                print(f"{label:>30}: {results[fmt]:>12,.0f} rows/s  ({len(body) / 1e6:5.1f} MB)")
        print("\n== ratios")
        print(
            f"arrow / json = {results['arrow'] / results['json']:.1f}x, "
            f"arrow / csv = {results['arrow'] / results['csv']:.1f}x, "
            f"arrow / DB ceiling = {results['arrow'] * best_db / rows:.0%}"
        )


def _time(func) -> float:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    func()
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
