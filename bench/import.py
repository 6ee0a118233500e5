"""``windpipe import``'s figures, side by side in one run: CSV beside Parquet beside
``psql \\copy`` of the same file.

    uv run python bench/import.py                  # 5 M rows (~0.5 GB of CSV), ~2 min
    uv run python bench/import.py --rows 30000000  # a ~3 GB CSV: memory stays where it was

One embedded PostgreSQL in a temporary directory. The export is generated in the shape of ENGIE's
La Haute Borne open data (``Wind_turbine_name, Date_time, Ba_avg, …, Ws_avg, P_avg, Ot_avg``: a
turbine name, local time with its UTC offset, many ``_avg/_min/_max/_std`` columns of which three
are mapped), ten turbines at 1 min, written once as CSV and once as Parquet. Every ``windpipe``
command runs as its own process under GNU ``time`` for its peak RSS:

- ``windpipe import`` of the CSV into an empty source, then again (every row already held: the
  upsert path), then the Parquet file into an empty source, then ``--dry-run`` of the CSV;
- the same CSV read as an export of period statistics (``[imports.stats]``: mean, min, max and
  std of wind speed and of power, their counts from ``samples_per_period``, end-labelled times):
  11 value columns written per row instead of 3, into an empty source, then again;
- ``psql \\copy`` of the same CSV into a table shaped like the file, keyed like the source
  ``(turbine, timestamp)``: the database's own loader, the ceiling for this file.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl
from sqlalchemy import text

from windpipe.postgres import database_url, libpq_conninfo, make_engine, stop_embedded
from windpipe.settings import load_settings
from windpipe.source.store import ensure_schema

TURBINES = [f"R807{n:02d}" for n in range(10, 20)]
#: The export's columns: the three windpipe maps, and the kind it ignores.
COLUMNS = ["Wind_turbine_name", "Date_time", "Ba_avg", "Ba_min", "Rt_avg", "Ws_avg", "Ws_min"]
COLUMNS += ["Ws_max", "Ws_std", "P_avg", "P_min", "P_max", "P_std", "Q_avg", "Ot_avg", "Yt_avg"]
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None
CONFIG = """
[imports.vendor]
time_column = "Date_time"
turbine_column = "Wind_turbine_name"
columns = { Ws_avg = "wind_speed", P_avg = "power", Ot_avg = "ambient_temperature" }

# The same file read as a 10-minute export: four statistics of wind speed and of power (the
# bench's rows are a minute apart, so the periods are 1min; the work per row is the same).
[imports.stats]
time_column = "Date_time"
turbine_column = "Wind_turbine_name"
period = "1min"
label = "end"
samples_per_period = 60

[imports.stats.columns]
Ws_avg = "wind_speed:mean"
Ws_min = "wind_speed:min"
Ws_max = "wind_speed:max"
Ws_std = "wind_speed:std"
P_avg = "power:mean"
P_min = "power:min"
P_max = "power:max"
P_std = "power:std"
Ot_avg = "ambient_temperature"
"""


def write_export(csv: Path, parquet: Path, rows: int) -> None:
    """The export, in chunks of a day of the farm, in time order then turbine (as vendors do)."""
    per_chunk = 1440 * len(TURBINES)
    writer = None
    import pyarrow.parquet as pq

    with csv.open("wb") as out:
        done = 0
        day = 0
        while done < rows:
            n = min(per_chunk, rows - done)
            minutes = pl.int_range(
                done // len(TURBINES), done // len(TURBINES) + per_chunk, eager=True
            )
            frame = (
                pl.DataFrame({"m": minutes})
                .join(pl.DataFrame({"Wind_turbine_name": TURBINES}), how="cross")
                .head(n)
            )
            ts = pl.datetime(2024, 1, 1, time_zone="UTC") + pl.duration(minutes=pl.col("m"))
            noise = (pl.col("m") * 7919 % 1000) / 100.0
            frame = frame.select(
                "Wind_turbine_name",
                ts.dt.convert_time_zone("Europe/Paris")
                .dt.to_string("%Y-%m-%dT%H:%M:%S%:z")
                .alias("Date_time"),
                (noise / 5).round(2).alias("Ba_avg"),
                (noise / 6).round(2).alias("Ba_min"),
                (noise + 8).round(2).alias("Rt_avg"),
                (noise + 2).round(2).alias("Ws_avg"),
                (noise + 1).round(2).alias("Ws_min"),
                (noise + 3).round(2).alias("Ws_max"),
                (noise / 10).round(2).alias("Ws_std"),
                (noise * 180 - 20).round(2).alias("P_avg"),
                (noise * 170 - 25).round(2).alias("P_min"),
                (noise * 190 - 15).round(2).alias("P_max"),
                (noise * 9).round(2).alias("P_std"),
                (noise * 3).round(2).alias("Q_avg"),
                (noise - 2).round(2).alias("Ot_avg"),
                (noise * 30).round(1).alias("Yt_avg"),
            )
            frame.write_csv(out, include_header=day == 0)
            table = frame.with_columns(
                pl.col("Date_time").str.to_datetime("%+", time_zone="UTC")
            ).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(parquet, table.schema)
            writer.write_table(table, row_group_size=131_072)
            done += n
            day += 1
    if writer is not None:
        writer.close()


def run_process(argv: Sequence[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes; 0 without GNU time) and standard output of one process."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        wrapped = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv] if GNU_TIME else list(argv)
        began = time.perf_counter()
        done = subprocess.run(wrapped, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
        kib = rss.read().strip().splitlines()
    return seconds, int(kib[-1]) * 1024 if GNU_TIME and kib else 0, done.stdout


def main(argv: Sequence[str] | None = None) -> None:
    """Generate the export, then time each loader on it and print them side by side."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the export")
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="windpipe-bench-import-"))
    try:
        settings = load_settings(data_dir=data_dir, _env_file=None)
        source_url = database_url(settings, "source")
        engine = make_engine(source_url)
        ensure_schema(engine)
        csv, parquet = data_dir / "export.csv", data_dir / "export.parquet"
        began = time.perf_counter()
        write_export(csv, parquet, args.rows)
        print(
            f"== export: {args.rows:,} rows x {len(COLUMNS)} columns, CSV "
            f"{csv.stat().st_size / 1e6:,.0f} MB, Parquet {parquet.stat().st_size / 1e6:,.0f} MB "
            f"(written in {time.perf_counter() - began:.0f} s; {os.cpu_count()} CPUs)"
        )
        config = data_dir / "windpipe.toml"
        config.write_text("".join(f'[[turbines]]\nid = "{t}"\n' for t in TURBINES) + CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WINDPIPE_")}
        env |= {"WINDPIPE_DATA_DIR": str(data_dir), "WINDPIPE_CONFIG": str(config)}
        windpipe = [sys.executable, "-m", "windpipe", "import", "--mapping", "vendor"]

        def empty() -> None:
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE data"))
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM data"))

        results = []
        empty()
        results.append(
            ("windpipe import, CSV, empty source", *run_process([*windpipe, str(csv)], env))
        )
        results.append(
            ("windpipe import, CSV again (all held)", *run_process([*windpipe, str(csv)], env))
        )
        empty()
        results.append(
            ("windpipe import, Parquet, empty source", *run_process([*windpipe, str(parquet)], env))
        )
        results.append(
            (
                "windpipe import --dry-run, CSV",
                *run_process([*windpipe, "--dry-run", str(csv)], env),
            )
        )
        # The same file as a 10-minute export: 4 statistics of 2 signals (+ their counts), the
        # statistics columns added by the import itself; into an empty source, beside row 1.
        empty()
        stats = [*windpipe[:-1], "stats"]
        results.append(
            (
                "windpipe import, CSV, 4 statistics x 2",
                *run_process([*stats, str(csv)], env),
            )
        )
        results.append(("the same again (all held)", *run_process([*stats, str(csv)], env)))

        psql = shutil.which("psql")
        if psql:
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS copy_probe"))
                conn.execute(
                    text(
                        "CREATE TABLE copy_probe (turbine text, ts timestamptz, "
                        + ", ".join(f'"{c}" float8' for c in COLUMNS[2:])
                        + ", PRIMARY KEY (turbine, ts))"
                    )
                )
            command = f"\\copy copy_probe FROM '{csv}' WITH (FORMAT csv, HEADER true)"
            results.append(
                (
                    "psql \\copy of the same CSV",
                    *run_process([psql, libpq_conninfo(source_url), "-c", command], env),
                )
            )
        else:
            print("psql not found: no \\copy figure")

        print(f"\n== import figures ({args.rows:,} rows; rate = rows of the file / wall time)")
        print(f"{'loader':<42} {'wall':>8} {'rows/s':>12} {'peak RSS':>10}")
        for label, seconds, rss, _ in results:
            print(
                f"{label:<42} {seconds:>7.1f}s {args.rows / seconds:>12,.0f} "
                f"{rss / 2**20:>8,.0f} MB"
            )
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
