"""Runs per hour of an idle farm under ``windpipe up``, by what requested them.

    uv run python bench/live_edge.py                         # 10 turbines, 10 minutes watched
    uv run python bench/live_edge.py --minutes 30 --turbines 4
    uv run python bench/live_edge.py --src OTHER/src         # another checkout's code, same venv
    uv run python bench/live_edge.py --home DIR --since T    # count only, in a running instance

Starts ``windpipe up`` in a temporary directory (10 synthetic turbines, the default 10 days of
1-minute samples and the live feed) on free loopback ports, waits for "catch-up done", then watches
``--minutes`` and counts the ETL runs created meanwhile in the Dagster instance: by mechanism
(the 10-minute schedule, the daily schedule, the catch-up sensor, the change sensor) and by the
days they cover, each as runs per hour. Nothing loads the source but the live feed, so every run
after the catch-up is what it costs to keep the live edge current. Each run costs 2.4-10 s of
Dagster's start-up on two cores, besides its ETL.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _mechanism(tags: dict[str, str]) -> str:
    if "dagster/schedule_name" in tags:
        return f"schedule {tags['dagster/schedule_name']}"
    if "dagster/sensor_name" in tags:
        return f"sensor {tags['dagster/sensor_name']}"
    return tags.get("windpipe/trigger", "other")


def _days(tags: dict[str, str]) -> str:
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    first = tags.get("dagster/asset_partition_range_start", "?")
    last = tags.get("dagster/asset_partition_range_end", "?")
    return first if first == last else f"{first}..{last}"


def count_runs(home: Path, since: datetime, until: datetime) -> tuple[Counter[str], Counter[str]]:
    """ETL runs created in ``[since, until)`` in the instance at ``home``: by mechanism, by days."""
    warnings.simplefilter("ignore")
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(
            filters=RunsFilter(job_name="windpipe_etl", created_after=since, created_before=until)
        )
    by_mechanism = Counter(_mechanism(dict(r.tags)) for r in runs)
    by_days = Counter(_days(dict(r.tags)) for r in runs)
    return by_mechanism, by_days


def report(by_mechanism: Counter[str], by_days: Counter[str], minutes: float) -> None:
    """Print the counts and their rates per hour."""
    per_hour = 60.0 / minutes
    total = sum(by_mechanism.values())
    print(f"ETL runs in {minutes:.1f} min: {total} ({total * per_hour:.1f} an hour)")
    for name, n in by_mechanism.most_common():
        print(f"  {name:<40} {n:>4} runs  {n * per_hour:>6.1f} an hour")
    print("by the days they cover:")
    for days, n in sorted(by_days.items()):
        print(f"  {days:<40} {n:>4} runs  {n * per_hour:>6.1f} an hour")


def watch_up(minutes: float, turbines: int, src: str | None) -> None:
    """Run ``windpipe up`` in a temporary directory, wait for the catch-up, watch, count."""
    work = Path(tempfile.mkdtemp(prefix="windpipe-bench-live-edge-"))
    (work / "windpipe.toml").write_text(
        "".join(
            f'[[turbines]]\nid = "WTG{i:02d}"\nsynthetic = true\n' for i in range(1, turbines + 1)
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WINDPIPE_", "DAGSTER_"))}
    env |= {
        "WINDPIPE_DATA_DIR": str(work / ".windpipe"),
        "WINDPIPE_API_PORT": str(_free_port()),
        "WINDPIPE_DAGSTER_PORT": str(_free_port()),
    }
    if src:
        env["PYTHONPATH"] = src
    log = (work / "up.log").open("w")
    up = subprocess.Popen(
        [str(Path(sys.executable).with_name("windpipe")), "up"],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 600
        while "catch-up done" not in (work / "up.log").read_text():
            if up.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"`windpipe up` did not catch up:\n{(work / 'up.log').read_text()}"
                )
            time.sleep(2)
        since = datetime.now(UTC)
        print(f"caught up; watching {minutes} min from {since:%H:%M:%S} UTC", flush=True)
        time.sleep(minutes * 60)
        until = datetime.now(UTC)
        report(*count_runs(work / ".windpipe" / "dagster", since, until), minutes)
    finally:
        up.send_signal(signal.SIGINT)  # `up` stops the embedded PostgreSQL it started
        up.wait(timeout=60)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    """Watch a fresh ``windpipe up``, or count in a running instance (``--home``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--turbines", type=int, default=10)
    parser.add_argument("--src", help="run another checkout's src/ (PYTHONPATH) in this venv")
    parser.add_argument("--home", type=Path, help="count only: a running instance's Dagster home")
    parser.add_argument("--since", help="with --home: ISO time (UTC) to count from")
    args = parser.parse_args()
    if args.home:
        since = datetime.fromisoformat(args.since).replace(tzinfo=UTC)
        until = datetime.now(UTC)
        minutes = (until - since).total_seconds() / 60
        report(*count_runs(args.home, since, until), minutes)
    else:
        watch_up(args.minutes, args.turbines, args.src)


if __name__ == "__main__":
    main()
