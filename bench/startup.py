"""Start-up cost of the CLI, side by side in one run: ``python -c pass`` beside windpipe commands.

    uv run python bench/startup.py                            # this checkout's windpipe
    uv run python bench/startup.py --also OTHER/.venv/bin/windpipe   # e.g. an older release

A one-day run is mostly interpreter start-up and imports, so this times whole processes: the
median (and min) of ``--runs`` runs of each command, interleaved so that load on the machine falls
on all of them alike. One embedded PostgreSQL in a temporary directory holds two days of 1-minute
samples; ``windpipe api`` serves them on a free loopback port. Every ``windpipe`` under test uses
the embedded default (no database URL), as ``make up`` users do.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from windpipe.postgres import database_url, make_engine, stop_embedded
from windpipe.settings import load_settings
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema
from windpipe.testing import start_api

DAY = date(2024, 6, 3)


def _time(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> None:
    """Seed, serve, then time each command ``--runs`` times, interleaved."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--also", action="append", default=[], help="another windpipe to time")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="windpipe-bench-startup-"))
    try:
        settings = load_settings(data_dir=data_dir, _env_file=None)
        source = make_engine(database_url(settings, "source"))
        ensure_schema(source)
        begin = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
        seed_source(source, begin, begin + timedelta(days=2))
        source.dispose()
        api = start_api(database_url(settings, "source"))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WINDPIPE_")},
            "WINDPIPE_DATA_DIR": str(data_dir),
            "WINDPIPE_API_URL": api.url,
        }
        here = str(Path(sys.executable).with_name("windpipe"))
        installs = {"this checkout": here, **{f"--also {p}": p for p in args.also}}
        commands: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"]}
        for label, windpipe in installs.items():
            commands[f"{label}: windpipe --version"] = [windpipe, "--version"]
            commands[f"{label}: windpipe etl --date {DAY}"] = [windpipe, "etl", "--date", str(DAY)]
        for argv in commands.values():  # warm the page cache and the target's schema
            _time(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(_time(argv, env))
        api.stop()
        base = statistics.median(times["python -c pass"])
        print(f"{'command':<72} {'median':>8} {'min':>8} {'- python':>9} {'/ python':>9}")
        for name, values in times.items():
            median = statistics.median(values)
            print(
                f"{name:<72} {median:>7.3f}s {min(values):>7.3f}s {median - base:>8.3f}s "
                f"{median / base:>8.1f}x"
            )
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
