"""The fleet's figures, side by side in one run: a 10-turbine farm beside one turbine.

    uv run python bench/fleet.py              # every figure (seeds ~6.2 M rows first, ~1 min)
    uv run python bench/fleet.py --runs 9     # more runs of each timed command

One embedded PostgreSQL in a temporary directory holds the source and the target; ``windpipe api``
runs as its own process on a free loopback port. The source holds a year of a 10-turbine farm at
1 min, one day of the farm at 1 Hz, and ten days of one turbine (WTG01) at 1 Hz: as many samples as
the farm's day. ``windpipe`` commands run as real processes with ``WINDPIPE_CONFIG`` pointing at a
``windpipe.toml`` declaring ten turbines (WTG01..WTG10) or one (WTG01), against the same databases.

- ``windpipe etl --date`` for a 1-min day, process start included: median of ``--runs`` runs,
  10 turbines and 1 turbine interleaved so load on the machine falls on both alike;
- end to end (source DB -> API -> aggregate -> target DB) with ``etl.pipeline.run_range`` in this
  process: the farm's 1 Hz day beside the one turbine's ten 1 Hz days (the same number of samples);
- peak RSS of the ``windpipe etl --date`` process for the farm's 1 Hz day (GNU ``time -f %M``);
- a year of the farm at 1 min: ``run_range`` after start-up, and ``windpipe backfill`` wall time.

The summary's last column is the headroom: target / measured for times and memory, measured /
target for rates, so a figure above 1.0x meets the issue's target.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
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
from windpipe.testing import start_api

VARIABLES = ["wind_speed", "power"]
AGGREGATIONS = ["mean", "min", "max", "std"]
FARM = [spec.id for spec in farm(10)]
ONE = FARM[:1]

YEAR_FIRST, YEAR_LAST = date(2025, 1, 1), date(2025, 12, 31)  # the farm at 1 min
MINUTE_DAY = date(2025, 6, 2)  # a 1-min day of the year, for `windpipe etl --date`
HZ_DAY = date(2026, 2, 2)  # the farm at 1 Hz
HZ_ONE_FIRST, HZ_ONE_DAYS = date(2026, 3, 2), 10  # one turbine at 1 Hz, as many samples

GIB = 1 << 30
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _seed(source_url: URL) -> None:
    source = make_engine(source_url)
    try:
        ensure_source_schema(source)
        hz_one_last = HZ_ONE_FIRST + timedelta(days=HZ_ONE_DAYS)
        plan = [
            ("farm, a year @ 1 min", YEAR_FIRST, YEAR_LAST + timedelta(days=1), FARM, "1min"),
            ("farm, 1 day @ 1 Hz", HZ_DAY, HZ_DAY + timedelta(days=1), FARM, "1s"),
            (f"WTG01, {HZ_ONE_DAYS} days @ 1 Hz", HZ_ONE_FIRST, hz_one_last, ONE, "1s"),
        ]
        print(f"== seeding the source ({os.cpu_count()} CPUs)")
        for label, first, end, turbines, freq in plan:
            specs = farm(len(turbines))
            done = seed_source(source, _utc(first), _utc(end), turbines=specs, freq=freq, seed=11)
            print(f"{label:>34}: {done.rows_written:>11,} rows in {done.seconds:6.1f} s")
        with source.connect() as conn:  # fresh statistics, as after any bulk load
            conn.execute(text("ANALYZE data"))
            conn.commit()
    finally:
        source.dispose()


# -- whole processes -------------------------------------------------------------------------------


def run_process(argv: Sequence[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes; 0 without GNU time) of one process, output discarded.

    The RSS comes from GNU ``time -f %M``: ``wait4``'s maxrss of a child of this process would
    count the pages it shared with this (large) process between fork and exec.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        wrapped = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv] if GNU_TIME else list(argv)
        began = time.perf_counter()
        done = subprocess.run(wrapped, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr.decode()}"
            )
        kib = rss.read().strip().splitlines()
    return seconds, int(kib[-1]) * 1024 if GNU_TIME and kib else 0


def _cli_env(data_dir: Path, api_url: str, config: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("WINDPIPE_")
    }
    return env | {
        "WINDPIPE_DATA_DIR": str(data_dir),  # the embedded server this bench started
        "WINDPIPE_API_URL": api_url,
        "WINDPIPE_CONFIG": str(config),
        "WINDPIPE_LOG_LEVEL": "WARNING",
    }


def _write_config(path: Path, turbines: Sequence[str]) -> Path:
    path.write_text("".join(f'[[turbines]]\nid = "{t}"\n\n' for t in turbines))
    return path


def interleaved(
    commands: dict[str, list[str]], envs: dict[str, dict[str, str]], runs: int
) -> dict[str, list[tuple[float, int]]]:
    """Seconds and peak RSS of each command over ``runs`` rounds (after one warm-up round)."""
    for name, argv in commands.items():
        run_process(argv, envs[name])
    measured: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            measured[name].append(run_process(argv, envs[name]))
    return measured


# -- in this process -------------------------------------------------------------------------------


def run_pipeline(
    api_url: str, target_url: URL, first: date, last: date, turbines: Sequence[str]
) -> tuple[float, int]:
    """Seconds (client and engine creation included) and samples read by ``run_range``."""
    began = time.perf_counter()
    engine = make_engine(target_url)
    with ApiClient(api_url) as client:
        results = run_range(
            first,
            last,
            client=client,
            engine=engine,
            variables=VARIABLES,
            aggregations=AGGREGATIONS,
            turbines=turbines,
        )
    seconds = time.perf_counter() - began
    engine.dispose()
    return seconds, sum(r.rows_read for r in results)


# -- the report ------------------------------------------------------------------------------------

Row = tuple[str, str, str, str]


def _times(values: Sequence[float]) -> str:
    return f"median {statistics.median(values):.2f} s, min {min(values):.2f} s, n={len(values)}"


def figure_cli_minute(env10: dict[str, str], env1: dict[str, str], runs: int) -> Row:
    script = str(Path(sys.executable).with_name("windpipe"))
    etl = [script, "etl", "--date", MINUTE_DAY.isoformat()]
    commands = {"python -c pass": [sys.executable, "-c", "pass"], "10": etl, "1": etl}
    envs = {"python -c pass": env1, "10": env10, "1": env1}
    measured = interleaved(commands, envs, runs)
    secs = {name: [s for s, _ in values] for name, values in measured.items()}
    print(f"\n== `windpipe etl --date {MINUTE_DAY}` (1-min day), process start included")
    print(f"{'python -c pass':>34}: {_times(secs['python -c pass'])}")
    print(f"{'1 turbine (1,440 samples)':>34}: {_times(secs['1'])}")
    print(f"{'10 turbines (14,400 samples)':>34}: {_times(secs['10'])}")
    ten, one = statistics.median(secs["10"]), statistics.median(secs["1"])
    print(f"{'ratio 10 / 1 turbine':>34}: {ten / one:.2f}x (+{(ten - one) * 1000:.0f} ms)")
    return ("etl --date, farm 1-min day (wall)", f"{ten:.2f} s", "< 1.5 s", f"{1.5 / ten:.1f}x")


def figure_end_to_end(api_url: str, target_url: URL, runs: int) -> Row:
    one_last = HZ_ONE_FIRST + timedelta(days=HZ_ONE_DAYS - 1)
    cases = {
        "10 turbines, 1 day @ 1 Hz": (HZ_DAY, HZ_DAY, FARM),
        f"1 turbine, {HZ_ONE_DAYS} days @ 1 Hz": (HZ_ONE_FIRST, one_last, ONE),
        "1 turbine, 1 day @ 1 Hz": (HZ_ONE_FIRST, HZ_ONE_FIRST, ONE),
    }
    for first, last, turbines in cases.values():  # warm-up: signals registered, pages cached
        run_pipeline(api_url, target_url, first, last, turbines)
    rates: dict[str, list[float]] = {name: [] for name in cases}
    samples: dict[str, int] = {}
    for _ in range(runs):
        for name, (first, last, turbines) in cases.items():
            seconds, rows = run_pipeline(api_url, target_url, first, last, turbines)
            rates[name].append(rows / seconds)
            samples[name] = rows
    print("\n== end to end (source DB -> API -> aggregate -> target DB), run_range in-process")
    for name, values in rates.items():
        print(
            f"{name:>34}: median {statistics.median(values):>10,.0f} samples/s, "
            f"best {max(values):>10,.0f} ({samples[name]:,} samples, n={len(values)})"
        )
    farm_rate = statistics.median(rates["10 turbines, 1 day @ 1 Hz"])
    one_rate = statistics.median(rates[f"1 turbine, {HZ_ONE_DAYS} days @ 1 Hz"])
    print(f"{'ratio farm day / 1 turbine':>34}: {farm_rate / one_rate:.2f}x per sample")
    return (
        "end to end, farm 1 Hz day",
        f"{farm_rate / 1e6:.2f} M samples/s",
        ">= 2 M samples/s",
        f"{farm_rate / 2e6:.2f}x",
    )


def figure_memory(env10: dict[str, str], env1: dict[str, str], runs: int) -> Row:
    script = str(Path(sys.executable).with_name("windpipe"))
    commands = {
        "10": [script, "etl", "--date", HZ_DAY.isoformat()],
        "1": [script, "etl", "--date", HZ_ONE_FIRST.isoformat()],
    }
    measured = interleaved(commands, {"10": env10, "1": env1}, runs)
    print("\n== `windpipe etl --date` of a 1 Hz day: peak RSS of the process (GNU time)")
    for name, label in (("1", "1 turbine (86,400 samples)"), ("10", "10 turbines (864,000)")):
        peak = max(rss for _, rss in measured[name]) / (1 << 20)
        secs = [s for s, _ in measured[name]]
        print(f"{label:>34}: peak {peak:6.0f} MiB; wall {_times(secs)}")
    peak10 = max(rss for _, rss in measured["10"])
    peak1 = max(rss for _, rss in measured["1"])
    print(f"{'ratio 10 / 1 turbine':>34}: {peak10 / peak1:.2f}x")
    return ("peak RSS, etl --date farm 1 Hz day", f"{peak10 / (1 << 20):.0f} MiB", "< 1 GiB",
            f"{GIB / peak10:.1f}x")  # fmt: skip


def figure_year(api_url: str, target_url: URL, env10: dict[str, str]) -> list[Row]:
    print(f"\n== backfill a year of the farm @ 1 min ({YEAR_FIRST}..{YEAR_LAST})")
    one_s, one_rows = run_pipeline(api_url, target_url, YEAR_FIRST, YEAR_LAST, ONE)
    farm_s, farm_rows = run_pipeline(api_url, target_url, YEAR_FIRST, YEAR_LAST, FARM)
    script = str(Path(sys.executable).with_name("windpipe"))
    argv = [script, "backfill", "--start", YEAR_FIRST.isoformat(), "--end", YEAR_LAST.isoformat()]
    cli_s, cli_rss = run_process(argv, env10)
    for label, seconds, rows in (
        ("run_range, 1 turbine", one_s, one_rows),
        ("run_range, 10 turbines", farm_s, farm_rows),
    ):
        print(f"{label:>34}: {seconds:6.2f} s ({rows:,} samples, {rows / seconds:,.0f} samples/s)")
    print(
        f"{'`windpipe backfill`, 10 turbines':>34}: {cli_s:6.2f} s wall, process start included "
        f"(peak RSS {cli_rss / (1 << 20):.0f} MiB)"
    )
    print(f"{'ratio 10 / 1 turbine':>34}: {farm_s / one_s:.2f}x the time for 10x the samples")
    return [
        ("backfill farm year @ 1 min, run_range", f"{farm_s:.2f} s", "< 5 s", f"{5 / farm_s:.1f}x"),
        ("same, `windpipe backfill` (wall)", f"{cli_s:.2f} s", "< 5 s", f"{5 / cli_s:.1f}x"),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Seed, serve, then measure each figure and print them with the issue's targets."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each timed command")
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="windpipe-bench-fleet-"))
    try:
        settings = load_settings(data_dir=data_dir, _env_file=None)
        source_url, target_url = database_url(settings, "source"), database_url(settings, "target")
        _seed(source_url)
        api = start_api(source_url, wait=60)
        try:
            env10 = _cli_env(data_dir, api.url, _write_config(data_dir / "farm.toml", FARM))
            env1 = _cli_env(data_dir, api.url, _write_config(data_dir / "one.toml", ONE))
            rows = [
                figure_cli_minute(env10, env1, args.runs),
                figure_end_to_end(api.url, target_url, args.runs),
                figure_memory(env10, env1, max(3, args.runs // 2)),
                *figure_year(api.url, target_url, env10),
            ]
        finally:
            api.stop()
        print("\n== the fleet's figures against their targets (headroom: > 1.0x meets the target)")
        print(f"{'figure':<40} {'measured':>18} {'target':>18} {'headroom':>9}")
        for figure, measured, target, headroom in rows:
            print(f"{figure:<40} {measured:>18} {target:>18} {headroom:>9}")
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
