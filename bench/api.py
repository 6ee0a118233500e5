"""Seeding time and API throughput per format, measured side by side in one run.

    uv run python bench/api.py     # seeds 10 days @ 1 min and 30 days @ 1 s, serves a 1 Hz day
                                   # and pages a 10-turbine month @ 1 min, old SQL and new

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

from windpipe.postgres import database_url, libpq_conninfo, make_engine, stop_embedded
from windpipe.settings import load_settings
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source
from windpipe.source.store import _literal, _selected, _turbine_literal, select_range_sql, vacuum
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.testing import api_process

HZ_START = datetime(2025, 1, 1, tzinfo=UTC)
FARM_START = datetime(2023, 1, 1, tzinfo=UTC)  # a 10-turbine farm @ 1 min, apart from the rest
TEN = [s.id for s in farm(10)]


def old_select_range_sql(
    variables: list[str],
    start: datetime,
    end: datetime,
    *,
    turbines: list[str] | None = None,
    limit: int,
    after: tuple[str, datetime] | None = None,
) -> str:
    """The reference: ``/data``'s page before it was two ranges of the key (one row comparison,
    the limit written out), kept to measure the new one against in the same run."""
    conditions = [f'"timestamp" >= {_literal(start)}', f'"timestamp" < {_literal(end)}']
    if turbines is not None:
        conditions.append(f"turbine IN ({', '.join(_turbine_literal(t) for t in turbines)})")
    if after is not None:
        conditions.append(
            f'(turbine, "timestamp") > ({_turbine_literal(after[0])}, {_literal(after[1])})'
        )
    return (
        f"SELECT {_selected(variables, None, None)} FROM data "  # noqa: S608 - literals only
        f'WHERE {" AND ".join(conditions)} ORDER BY turbine, "timestamp" LIMIT {limit}'
    )


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
    parser.add_argument("--farm-days", type=int, default=30, help="days of the 10-turbine farm")
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
            farm_days = args.farm_days
            seed_source(
                engine,
                FARM_START,
                FARM_START + timedelta(days=farm_days),
                turbines=farm(10),
                freq="1min",
            )
            vacuum(engine)
            measure_paging(libpq_conninfo(url), farm_days, args.repeat)
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
        reader = Reader(conninfo)
        sql = select_range_sql(["wind_speed", "power"], HZ_START, HZ_START + timedelta(days=1))
        reader.query(sql)  # warm the connection
        best_db = min(_time(lambda: reader.query(sql)) for _ in range(repeat))
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


class Reader:
    """One ADBC connection, as the API's pool holds them: ``query`` answers an Arrow table."""

    def __init__(self, conninfo: str) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        self._conn = adbc.connect(conninfo, autocommit=True)

    def query(self, sql: str) -> pa.Table:
        with self._conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table()

    def close(self) -> None:
        self._conn.close()


def read_pages(reader: Reader, make_sql, limit: int) -> tuple[int, list[float]]:  # type: ignore[no-untyped-def]
    """Every page of a range as ``/data`` reads it; rows and each page's seconds."""
    rows, seconds, after = 0, [], None
    while True:
        began = time.perf_counter()
        page = reader.query(make_sql(limit=limit, after=after))
        seconds.append(time.perf_counter() - began)
        rows += page.num_rows
        if page.num_rows < limit:
            return rows, seconds
        after = (page.column("turbine")[-1].as_py(), page.column("timestamp")[-1].as_py())


def measure_paging(conninfo: str, days: int, repeat: int) -> None:
    """A 10-turbine range of several pages read page by page, the old SQL and the new one
    alternately, on one ADBC connection (the API's reader): seconds a page, first and later."""
    reader = Reader(conninfo)
    variables = ["wind_speed", "power"]
    start, end = FARM_START, FARM_START + timedelta(days=days)
    print(f"\n== paging a 10-turbine range @ 1 min ({days} days), best of", repeat)
    try:
        for label, turbines, limit in (
            ("all turbines, Arrow pages", None, 131_072),
            ("10 listed, Arrow pages", TEN, 131_072),
            ("3 listed, JSON pages", TEN[1:8:3], 32_768),
            ("1 listed, JSON pages", TEN[4:5], 32_768),
        ):
            best: dict[str, tuple[float, float, float, int]] = {}
            for _ in range(repeat):
                for name, sql in (("old", old_select_range_sql), ("new", select_range_sql)):

                    def make(*, limit: int, after, sql=sql, turbines=turbines):  # type: ignore[no-untyped-def]
                        return sql(
                            variables, start, end, turbines=turbines, limit=limit, after=after
                        )

                    rows, seconds = read_pages(reader, make, limit)
                    total = sum(seconds)
                    later = max(seconds[1:], default=0.0)
                    if name not in best or total < best[name][0]:
                        best[name] = (total, seconds[0], later, rows)
            (old, new) = best["old"], best["new"]
            assert old[3] == new[3], label
            pages = -(-new[3] // limit)
            print(
                f"{label:>26}: {new[3]:>9,} rows, {pages} pages: old {old[0]:6.3f} s "
                f"(first {old[1] * 1e3:5.0f} ms, slowest later {old[2] * 1e3:5.0f} ms), "
                f"new {new[0]:6.3f} s (first {new[1] * 1e3:5.0f} ms, slowest later "
                f"{new[2] * 1e3:5.0f} ms): {old[0] / new[0]:4.1f}x"
            )
    finally:
        reader.close()


def _time(func) -> float:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    func()
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
