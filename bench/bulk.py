"""The bulk path's figures, each beside a floor measured in the same run.

    uv run python bench/bulk.py                 # every figure (~4 min: seeds ~7.4 M samples)
    uv run python bench/bulk.py --skip-daily    # without the year by the daily path (~30 s)

One embedded PostgreSQL in a temporary directory; ``windpipe api`` as its own process.

- **A year of a 10-turbine farm at 1 min** (5.26 M samples, 4.2 M target rows): ``run_backfill``
  (whole months by the bulk path) beside the floor, a plain binary COPY of as many target rows
  into an unindexed table (and the same rows as CSV, the daily path's format); where the time
  goes: the year fetched alone (API, Arrow), aggregated alone, loaded alone (``replace_month``
  with the aggregates ready); and the same year by the daily path (``run_range``), before.
- **A farm-sized month**: 50 turbines x the generator's variables (wind speed, power, ambient
  temperature) x 4 aggregations at 1 min, 30 days (2.16 M samples, 2.6 M target rows):
  samples/s end to end, target rows/s beside the floor, peak RSS of the process that runs it
  (GNU time), bytes per stored value (the month's partition with its indexes / its rows).
- **A day of that farm through the daily path**, and **the README's query** (one signal of one
  turbine over the year), on the partitioned table and on the release before's single table
  (migration t0005, the same rows): before / after.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from windpipe.catalog import signal_names
from windpipe.etl.backfill import FETCH_WORKERS, GROUP_SAMPLES, run_backfill, turbine_groups
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.etl.transform import aggregate_10min
from windpipe.migrations import upgrade
from windpipe.postgres import database_url, make_engine, stop_embedded
from windpipe.settings import load_settings
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.testing import start_api
from windpipe.warehouse import bulk, queries
from windpipe.warehouse.partitions import next_month
from windpipe.warehouse.store import HISTORY, _signal_ids, ensure_schema

AGGREGATIONS = ["mean", "min", "max", "std"]
YEAR_VARIABLES = ["wind_speed", "power"]
DAY_VARIABLES = ["wind_speed", "power", "ambient_temperature"]  # what the generator makes
#: The six signals being added to the generator, as double columns of this bench's source only,
#: derived from the generated ones (``EXTRA``) and aggregated as linear signals (4 statistics).
EXTRA = {
    "wind_direction": "mod((wind_speed * 37.0)::numeric, 360)::float8",
    "nacelle_direction": "mod((wind_speed * 37.0 + 3)::numeric, 360)::float8",
    "pitch_angle": "greatest(0.0, wind_speed - 11.0) * 2.0",
    "rotor_speed": "least(wind_speed * 1.3, 16.0)",
    "energy": "power / 60.0",
    "status": "(power > 0)::int::float8",
}
FARM_VARIABLES = [*DAY_VARIABLES, *EXTRA]
#: The commit before ``data`` was partitioned (t0006): the daily path's "before".
BEFORE_PARTITIONING = "0453b61"
TEN = [s.id for s in farm(10)]
FIFTY = [s.id for s in farm(50)]
YEAR_FIRST, YEAR_LAST = date(2025, 1, 1), date(2025, 12, 31)
MONTH_FIRST, MONTH_LAST = date(2026, 4, 1), date(2026, 4, 30)  # the 50-turbine farm, 30 days
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def _fresh(engine: Engine) -> None:
    """An empty target at the newest schema (signals kept: ids stay, as on a real target)."""
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE data, day_load"))


def floor(
    engine: Engine,
    payload: bytes,
    *,
    fmt: str,
    ids: bool = False,
    build: Sequence[str] = (),
    id_column: bool = True,
) -> float:
    """Seconds to COPY ``payload`` into a table like ``data`` with no index or constraint (its
    ``id`` from ``data_id_seq`` row by row, or given in ``payload`` with ``ids``), then run the
    ``build`` statements on it (``{t}``: the table): the floor of another layout (without the
    ``id`` column: ``id_column=False``)."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS floor_copy"))
        conn.execute(
            text(
                "CREATE TABLE floor_copy ("
                + ("id bigint NOT NULL DEFAULT nextval('data_id_seq'), " if id_column else "")
                + '"timestamp" timestamptz NOT NULL, signal_id integer NOT NULL, '
                "value double precision NOT NULL)"
            )
        )
    began = time.perf_counter()
    with engine.begin() as conn:
        driver = conn.connection.driver_connection
        with (
            driver.cursor() as cur,
            cur.copy(  # type: ignore[union-attr]
                f'COPY floor_copy ({"id, " if ids else ""}"timestamp", signal_id, value) '
                f"FROM STDIN (FORMAT {fmt})"
            ) as copy,
        ):
            for start in range(0, len(payload), 1 << 22):
                copy.write(payload[start : start + (1 << 22)])
        for statement in build:
            conn.execute(text(statement.format(t="floor_copy")))
    seconds = time.perf_counter() - began
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE floor_copy"))
    return seconds


def months_of(first: date, last: date) -> list[date]:
    months, month = [], date(first.year, first.month, 1)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def fetch_groups(client: ApiClient, months: Sequence[date], turbines: Sequence[str]) -> list:
    """The months' samples as the bulk path fetches them: in groups of turbines of at most
    ``GROUP_SAMPLES`` samples, ``FETCH_WORKERS`` requests at once."""
    held: dict[str, int] = {}
    for (turbine, _), fingerprint in client.fingerprints(months[0], months[-1] + timedelta(
        days=27), turbines).items():  # fmt: skip
        held[turbine] = held.get(turbine, 0) + int(fingerprint.partition(":")[0])
    groups = turbine_groups(turbines, {t: n // len(months) for t, n in held.items()})
    with ThreadPoolExecutor(FETCH_WORKERS) as pool:
        return list(
            pool.map(
                lambda job: client.fetch_frame(*bulk.month_bounds(job[0]), YEAR_VARIABLES, job[1]),
                [(m, g) for m in months for g in groups],
            )
        )


def year_figures(api_url: str, target: Engine, *, skip_daily: bool, runs: int) -> None:
    print(f"\n== a year of 10 turbines @ 1 min ({YEAR_FIRST}..{YEAR_LAST}), {os.cpu_count()} CPUs")
    months = months_of(YEAR_FIRST, YEAR_LAST)
    with ApiClient(api_url, timeout=600) as client:
        frames: list[pl.DataFrame] = []
        whole_s = _timed(
            lambda: frames.extend(
                client.fetch_frame(*bulk.month_bounds(m), YEAR_VARIABLES, TEN) for m in months
            )
        )
        groups_s = _timed(lambda: fetch_groups(client, months, TEN))
    samples = sum(f.height for f in frames)
    aggs: list[pl.DataFrame] = []
    agg_s = _timed(
        lambda: aggs.extend(
            aggregate_10min(f, variables=YEAR_VARIABLES, aggregations=AGGREGATIONS) for f in frames
        )
    )
    rows = sum(a.height for a in aggs)
    signals = signal_names(YEAR_VARIABLES, AGGREGATIONS)
    _fresh(target)
    with target.begin() as conn:
        ids = _signal_ids(conn, TEN, signals)

    def payload(with_ids: bool) -> bytes:
        parts, first = [], 1
        for a in aggs:
            parts.append(bulk.encode_copy_binary(a, ids, first_id=first if with_ids else None))
            first += a.height
        return b"".join([bulk._BINARY_HEADER] + [p[19:-2] for p in parts] + [bulk._BINARY_TRAILER])

    binary, binary_ids = payload(False), payload(True)
    from windpipe.warehouse.store import encode_copy_csv

    csv = b"".join(encode_copy_csv(a, ids) for a in aggs)
    unique = 'ALTER TABLE {t} ADD UNIQUE (signal_id, "timestamp")'
    designs = {
        "the same, ids given (no nextval a row)": dict(payload=binary_ids, ids=True),
        "no id index: ids given, unique built": dict(payload=binary_ids, ids=True, build=[unique]),
        "no id column: unique built": dict(payload=binary, build=[unique], id_column=False),
    }
    floors: dict[str, list[float]] = {"binary": [], "csv": [], **{d: [] for d in designs}}
    runs_bulk, load_s = [], []
    for _ in range(runs):  # interleaved, so load on the machine falls on each alike
        _fresh(target)
        load_s.append(
            _timed(
                lambda: [
                    bulk.replace_month(target, m, a, signals=signals, turbines=TEN)
                    for m, a in zip(months, aggs, strict=True)
                ]
            )
        )
        floors["binary"].append(floor(target, binary, fmt="binary"))
        floors["csv"].append(floor(target, csv, fmt="csv"))
        for name, design in designs.items():
            floors[name].append(floor(target, fmt="binary", **design))  # type: ignore[arg-type]
        _fresh(target)
        with ApiClient(api_url, timeout=600) as client:
            runs_bulk.append(
                _timed(
                    lambda: run_backfill(
                        YEAR_FIRST, YEAR_LAST, client=client, engine=target,
                        variables=YEAR_VARIABLES, aggregations=AGGREGATIONS, turbines=TEN,
                    )
                )
            )  # fmt: skip
    fb, fc, bk = (statistics.median(v) for v in (floors["binary"], floors["csv"], runs_bulk))
    print(f"{'samples / target rows':>40}: {samples:,} / {rows:,}")
    print(f"{'floor: binary COPY, unindexed table':>40}: {fb:6.2f} s ({rows / fb:,.0f} rows/s)")
    print(f"{'floor: CSV COPY, unindexed table':>40}: {fc:6.2f} s ({rows / fc:,.0f} rows/s)")
    for name in designs:
        f = statistics.median(floors[name])
        print(f"{'  ' + name:>40}: {f:6.2f} s ({f / fb:.2f}x the binary floor)")
    print(
        f"{'bulk backfill (run_backfill), end to end':>40}: {bk:6.2f} s = {bk / fb:.2f}x the "
        f"binary floor, {bk / fc:.2f}x the CSV floor (min {min(runs_bulk):.2f} s, n={runs})"
    )
    print(f"{'  fetch alone, 12 whole-month requests':>40}: {whole_s:6.2f} s")
    print(f"{'  fetch alone, as the bulk path does':>40}: {groups_s:6.2f} s "
          f"(groups of <= {GROUP_SAMPLES:,} samples, {FETCH_WORKERS} at once)")  # fmt: skip
    print(f"{'  aggregate alone (Polars)':>40}: {agg_s:6.2f} s")
    print(
        f"{'  load alone (replace_month x 12)':>40}: {statistics.median(load_s):6.2f} s "
        f"= {statistics.median(load_s) / fb:.2f}x the binary floor"
    )
    if not skip_daily:
        _fresh(target)
        with ApiClient(api_url, timeout=600) as client:
            daily = _timed(
                lambda: run_range(
                    YEAR_FIRST, YEAR_LAST, client=client, engine=target,
                    variables=YEAR_VARIABLES, aggregations=AGGREGATIONS, turbines=TEN,
                )
            )  # fmt: skip
        print(f"{'daily path (run_range), before':>40}: {daily:6.2f} s = {daily / fb:.2f}x")


CHILD = """
import sys
from datetime import date
from windpipe.etl.backfill import run_backfill
from windpipe.etl.extract import ApiClient
from windpipe.postgres import make_engine
from sqlalchemy.engine import make_url
api, url, first, last, turbines, variables = sys.argv[1:7]
engine = make_engine(make_url(url))
with ApiClient(api, timeout=600) as client:
    run_backfill(date.fromisoformat(first), date.fromisoformat(last), client=client,
                 engine=engine, variables=variables.split(","),
                 aggregations=["mean", "min", "max", "std"], turbines=turbines.split(","))
"""


def farm_month_figures(api_url: str, target: Engine, target_url: URL, runs: int) -> None:
    print(f"\n== a farm-sized month: 50 turbines x {len(FARM_VARIABLES)} variables x 4 @ 1 min")
    _fresh(target)
    argv = [
        sys.executable, "-c", CHILD, api_url,
        target_url.render_as_string(hide_password=False), MONTH_FIRST.isoformat(),
        MONTH_LAST.isoformat(), ",".join(FIFTY), ",".join(FARM_VARIABLES),
    ]  # fmt: skip
    secs, rss = [], 0
    for _ in range(runs):
        with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
            wrapped = [GNU_TIME, "-f", "%M", "-o", out.name, *argv] if GNU_TIME else argv
            began = time.perf_counter()
            subprocess.run(wrapped, check=True)
            secs.append(time.perf_counter() - began)
            lines = out.read().strip().splitlines()
            rss = max(rss, int(lines[-1]) * 1024 if GNU_TIME and lines else 0)
    with target.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM data")).scalar_one()
        size = conn.execute(
            text("SELECT pg_total_relation_size('data_2026_04'), pg_relation_size('data_2026_04')")
        ).one()
    with ApiClient(api_url) as client:
        samples = sum(
            int(p.partition(":")[0])
            for p in client.fingerprints(MONTH_FIRST, MONTH_LAST, FIFTY).values()
        )
    with target.begin() as conn:
        ids = _signal_ids(conn, FIFTY, signal_names(FARM_VARIABLES, AGGREGATIONS))
    with ApiClient(api_url, timeout=600) as client:
        frame = client.fetch_frame(*bulk.month_bounds(MONTH_FIRST), FARM_VARIABLES, FIFTY)
    aggs = aggregate_10min(frame, variables=FARM_VARIABLES, aggregations=AGGREGATIONS)
    fb = statistics.median(
        floor(target, bulk.encode_copy_binary(aggs, ids), fmt="binary") for _ in range(runs)
    )
    wall = statistics.median(secs)
    print(f"{'samples / target rows':>40}: {samples:,} / {rows:,}")
    print(
        f"{'process wall (start-up included)':>40}: {wall:6.2f} s: {samples / wall:,.0f} "
        f"samples/s, {rows / wall:,.0f} target rows/s (n={runs})"
    )
    print(f"{'floor: binary COPY, unindexed':>40}: {fb:6.2f} s: {rows / fb:,.0f} rows/s "
          f"(the run is {wall / fb:.2f}x it)")  # fmt: skip
    print(f"{'peak RSS (GNU time)':>40}: {rss / (1 << 20):.0f} MiB")
    print(
        f"{'bytes per stored value':>40}: {size[0] / rows:.1f} (table {size[1] / rows:.1f}, "
        f"indexes {(size[0] - size[1]) / rows:.1f})"
    )


DAY_CHILD = """
import sys, time
from datetime import date
from windpipe.etl.pipeline import run_range
from windpipe.etl.extract import ApiClient
from windpipe.postgres import make_engine
from sqlalchemy.engine import make_url
api, url, day, turbines, variables, n = sys.argv[1:7]
engine, day = make_engine(make_url(url)), date.fromisoformat(day)
with ApiClient(api, timeout=600) as client:
    for _ in range(int(n)):
        began = time.perf_counter()
        run_range(day, day, client=client, engine=engine, variables=variables.split(","),
                  aggregations=["mean", "min", "max", "std"], turbines=turbines.split(","))
        print(time.perf_counter() - began)
"""


def before_after(api_url: str, target: Engine, target_url: URL, runs: int) -> None:
    """A farm day by the daily path, and the README query over a year: t0005 table vs now."""
    print("\n== before (t0005: one table) / after (by month)")
    old_url = target_url.set(database="windpipe_bench_t0005")
    admin = make_engine(target_url.set(database="postgres")).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS windpipe_bench_t0005"))
        conn.execute(text("CREATE DATABASE windpipe_bench_t0005"))
    old = make_engine(old_url)
    upgrade(old, HISTORY, "t0005")
    # The year (the year figures left it in the new target) copied into the old layout.
    with target.connect() as src, old.begin() as dst:
        dst.execute(text("INSERT INTO signal SELECT * FROM signal WHERE false"))
        for row in src.execute(text("SELECT id, name, turbine, variable, aggregation FROM signal")):
            dst.execute(
                text("INSERT INTO signal VALUES (:i, :n, :t, :v, :a)"),
                dict(zip("intva", row, strict=True)),
            )
        dst.execute(text("SELECT setval('signal_id_seq', (SELECT max(id) FROM signal))"))
        raw = src.connection.driver_connection
        out = dst.connection.driver_connection
        with (
            raw.cursor() as c1,
            c1.copy(  # type: ignore[union-attr]
                'COPY (SELECT "timestamp", signal_id, value FROM data) TO STDOUT (FORMAT binary)'
            ) as reader,
            out.cursor() as c2,
            c2.copy(  # type: ignore[union-attr]
                'COPY data ("timestamp", signal_id, value) FROM STDIN (FORMAT binary)'
            ) as writer,
        ):
            for block in reader:
                writer.write(block)
    with old.connect() as conn:
        conn.execute(text("ANALYZE data"))
        conn.commit()
    with target.connect() as conn:
        conn.execute(text("ANALYZE data"))
        conn.commit()
    sql = queries.aggregates_sql(["power_mean"], YEAR_FIRST, date(2026, 1, 1), turbines=["WTG01"])
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(max(runs, 7)):
        for name, engine in (("before", old), ("after", target)):
            with engine.connect() as conn:
                began = time.perf_counter()
                n = len(conn.execute(text(sql)).all())
                times[name].append(time.perf_counter() - began)
    b, a = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"{'README query, a year of one signal':>40}: before {b * 1000:.1f} ms, after "
          f"{a * 1000:.1f} ms ({n:,} rows; after/before {a / b:.2f}x)")  # fmt: skip
    # A day of the 50-turbine farm through the daily path: the code before partitioning on its
    # single table, this checkout on the months, each in processes of its own, alternately.
    day = (MONTH_FIRST + timedelta(days=14)).isoformat()
    days: dict[str, list[float]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="windpipe-before-") as tree:
        archive = subprocess.run(
            ["git", "archive", BEFORE_PARTITIONING, "src"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        for _ in range(max(runs, 4)):
            for name, url, path in (
                ("before", old_url, f"{tree}/src"),
                ("after", target_url, str(Path(__file__).parents[1] / "src")),
            ):
                argv = [
                    sys.executable, "-c", DAY_CHILD, api_url,
                    url.render_as_string(hide_password=False), day, ",".join(FIFTY),
                    ",".join(DAY_VARIABLES), "5",
                ]  # fmt: skip
                env = {**os.environ, "PYTHONPATH": path}
                out = subprocess.run(argv, check=True, capture_output=True, text=True, env=env)
                days[name].extend(float(x) for x in out.stdout.split())
        wide = [
            sys.executable, "-c", DAY_CHILD, api_url,
            target_url.render_as_string(hide_password=False), day, ",".join(FIFTY),
            ",".join(FARM_VARIABLES), "5",
        ]  # fmt: skip
        out = subprocess.run(wide, check=True, capture_output=True, text=True)
        w = statistics.median(float(x) for x in out.stdout.split())
    b, a = statistics.median(days["before"]), statistics.median(days["after"])
    n = len(days["after"])
    print(f"{'a farm day (50 turbines x 3 variables)':>40}: before ({BEFORE_PARTITIONING}) "
          f"{b:.3f} s, after {a:.3f} s (after/before {a / b:.2f}x, n={n} each)")  # fmt: skip
    print(f"{'the same day, 9 variables (after)':>40}: {w:.3f} s (n=5)")
    old.dispose()
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE windpipe_bench_t0005 WITH (FORCE)"))
    admin.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    """Seed, serve, then print each figure beside its floor."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-daily", action="store_true")
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="windpipe-bench-bulk-"))
    try:
        settings = load_settings(data_dir=data_dir, _env_file=None)
        source_url, target_url = database_url(settings, "source"), database_url(settings, "target")
        source = make_engine(source_url)
        ensure_source_schema(source)
        for label, first, last, turbines in (
            ("10 turbines, a year @ 1 min", YEAR_FIRST, YEAR_LAST, 10),
            ("50 turbines, 30 days @ 1 min", MONTH_FIRST, MONTH_LAST, 50),
        ):
            done = seed_source(source, _utc(first), _utc(last) + timedelta(days=1),
                               turbines=farm(turbines), freq="1min", seed=11)  # fmt: skip
            print(f"seeded {label}: {done.rows_written:,} samples in {done.seconds:.1f} s")
        with source.begin() as conn:  # the farm month's six more signals
            conn.execute(
                text(
                    "ALTER TABLE data "
                    + ", ".join(f"ADD COLUMN {n} double precision" for n in EXTRA)
                )
            )
            conn.execute(
                text(
                    "UPDATE data SET "  # noqa: S608 - the bench's own expressions
                    + ", ".join(f"{n} = {sql}" for n, sql in EXTRA.items())
                    + ' WHERE "timestamp" >= :first'
                ),
                {"first": _utc(MONTH_FIRST)},
            )
        with source.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text("VACUUM ANALYZE data"))
        source.dispose()
        target = make_engine(target_url)
        declared = {n: {"aggregate": True} for n in FARM_VARIABLES}
        api = start_api(source_url, wait=60, env={"WINDPIPE_SIGNALS": json.dumps(declared)})
        try:
            year_figures(api.url, target, skip_daily=args.skip_daily, runs=args.runs)
            before_after(api.url, target, target_url, args.runs)
            farm_month_figures(api.url, target, target_url, args.runs)
        finally:
            api.stop()
            target.dispose()
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
