"""What a signal's kind costs: the transform's time per sample for a linear, an angle, a counter
and a state signal, side by side on the same 1 Hz farm day, and 10-minute statistics rolled up.

    uv run python bench/kinds.py                  # 10 turbines x 1 day at 1 Hz (864,000 each)
    uv run python bench/kinds.py --turbines 2     # smaller

Each kind aggregates one column of the same frame (sorted by turbine and time, as the API sends
it) to 10-minute windows with its default aggregations (linear: mean, min, max, std; angle: mean,
std; counter: delta, last; state: mode, last); the best of ``--repeat`` runs is kept. The ratio is
to the linear signal's time in the same run. Only the transform is timed: fetching and loading
cost the same per value whatever the kind.
"""

import argparse
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from windpipe.catalog import Rollup, SignalKind
from windpipe.etl.transform import aggregate_10min

DAY = datetime(2024, 1, 1)


def farm_day(turbines: int, seed: int = 1) -> pl.DataFrame:
    """A day at 1 Hz per turbine: speed, direction around north, an energy counter, a status."""
    rng = np.random.default_rng(seed)
    seconds = 86_400
    stamps = pl.datetime_range(
        DAY, DAY + timedelta(seconds=seconds - 1), "1s", eager=True, time_unit="us"
    )
    frames = []
    for t in range(turbines):
        speed = np.clip(8 + np.cumsum(rng.normal(0, 0.01, seconds)), 0, 30)
        direction = (np.cumsum(rng.normal(0, 0.2, seconds)) + rng.normal(0, 10, seconds)) % 360
        energy = np.cumsum(np.clip(speed, 0, 12) ** 3 / 3600)
        status = np.where(speed < 3, 0.0, 1.0)
        frames.append(
            pl.DataFrame(
                {
                    "turbine": f"WTG{t + 1:02d}",
                    "timestamp": stamps,
                    "wind_speed": speed,
                    "wind_direction": direction,
                    "energy": energy,
                    "status": status,
                }
            )
        )
    return pl.concat(frames)


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def statistics_export(frame: pl.DataFrame) -> pl.DataFrame:
    """The same day as a 10-minute export: mean, min, max, std, count per period."""
    return (
        frame.group_by_dynamic("timestamp", every="10m", group_by="turbine")
        .agg(
            pl.col("wind_speed").mean(),
            pl.col("wind_speed").min().alias("wind_speed__min"),
            pl.col("wind_speed").max().alias("wind_speed__max"),
            pl.col("wind_speed").std().alias("wind_speed__std"),
            pl.col("wind_speed").count().cast(pl.Float64).alias("wind_speed__count"),
        )
        .sort("turbine", "timestamp")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turbines", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = farm_day(args.turbines)
    samples = frame.height
    cases = {
        "linear (wind_speed)": Rollup({"wind_speed": ("mean", "min", "max", "std")}),
        "angle (wind_direction)": Rollup(
            {"wind_direction": ("mean", "std")}, {"wind_direction": SignalKind.ANGLE}
        ),
        "counter (energy)": Rollup({"energy": ("delta", "last")}, {"energy": SignalKind.COUNTER}),
        "state (status)": Rollup({"status": ("mode", "last")}, {"status": SignalKind.STATE}),
    }
    print(f"{args.turbines} turbine(s) x 1 day at 1 Hz: {samples:,} samples per signal")
    print(f"{'kind':<26}{'seconds':>9}{'ns/sample':>11}{'x linear':>10}")
    base = None
    for name, rollup in cases.items():
        columns = ["turbine", "timestamp", *rollup.variables]
        chosen = frame.select(columns)
        seconds = best(lambda r=rollup, f=chosen: aggregate_10min(f, rollup=r), args.repeat)
        base = base or seconds
        print(f"{name:<26}{seconds:>9.3f}{seconds / samples * 1e9:>11.1f}{seconds / base:>10.2f}")

    export = statistics_export(frame.select("turbine", "timestamp", "wind_speed"))
    linear = Rollup({"wind_speed": ("mean", "min", "max", "std")})
    raw_hour = best(
        lambda: aggregate_10min(
            frame.select("turbine", "timestamp", "wind_speed"),
            rollup=linear,
            window=timedelta(hours=1),
        ),
        args.repeat,
    )
    rolled = best(
        lambda: aggregate_10min(export, rollup=linear, window=timedelta(hours=1)), args.repeat
    )
    print(
        f"1-hour statistics from the raw samples {raw_hour:.3f} s; from their 10-minute export "
        f"({export.height:,} periods, pooled) {rolled:.3f} s ({raw_hour / rolled:.0f}x fewer "
        "seconds)"
    )


if __name__ == "__main__":
    main()
