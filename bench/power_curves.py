"""Power curves for a year of a 10-turbine farm (52,560 windows each): the server time of
``GET /power-curves`` beside today's plain binning of the same windows, and windpipe's flags and
curves beside OpenOA doing the same on the same frame, in the same run.

    uv run python bench/power_curves.py                 # 10 turbines x 365 days
    uv run python bench/power_curves.py --turbines 2    # smaller
    uv run python bench/power_curves.py --no-server     # the in-process figures only

In process, on one frame of 10-minute windows (speed, power, temperature): (a) today's plain
binning (0.5 m/s bins of every window's speed, mean power); (b) windpipe: the IEC 61400-26-1
categories, every flag, and the curves (density, normalisation, bins, completeness); (c) OpenOA
(if installed, a test-only dependency): ``unresponsive_flag`` and ``range_flag`` on speed and
power, ``compute_air_density``, the normalised speed and a pandas binning per turbine. The ratio
is to (a), and OpenOA's to windpipe's. With the server: the year is loaded into a fresh embedded
target, and ``/power-curves`` (Arrow) is timed against ``/aggregates`` of the same windows.
"""

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from windpipe.analytics.flags import FlagConfig, window_flags
from windpipe.analytics.power_curve import CurveConfig, Site, power_curves
from windpipe.catalog import window_categories

START = datetime(2023, 1, 1)
WINDOWS = 52_560


def year(turbines: int, seed: int = 3) -> pl.DataFrame:
    """A year of 10-minute windows per turbine: Weibull-like speed, a cubic curve, seasons."""
    rng = np.random.default_rng(seed)
    stamps = pl.datetime_range(
        START, START + timedelta(minutes=10 * (WINDOWS - 1)), "10m", eager=True, time_unit="us"
    )
    frames = []
    for t in range(turbines):
        v = np.clip(rng.weibull(2.0, WINDOWS) * 8.0, 0, 30)
        p = np.clip(2000 * ((v - 3) / 9) ** 3, 0, 2000) * (v > 3) * (v < 25)
        p = p + rng.normal(0, 15, WINDOWS)
        days = np.arange(WINDOWS) / 144
        temp = 8 - 10 * np.cos(2 * np.pi * days / 365) + rng.normal(0, 2, WINDOWS)
        frames.append(
            pl.DataFrame(
                {
                    "turbine": f"WTG{t + 1:02d}",
                    "timestamp": stamps,
                    "wind_speed_mean": v,
                    "power_mean": p,
                    "ambient_temperature_mean": temp,
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


def plain(frame: pl.DataFrame) -> pl.DataFrame:
    """Today's curve: every window binned by its speed, mean power per bin."""
    return frame.group_by(
        "turbine", ((pl.col("wind_speed_mean") / 0.5 + 0.5).floor() * 0.5).alias("bin")
    ).agg(pl.col("power_mean").mean(), pl.len())


def windpipe(frame: pl.DataFrame) -> object:
    """Categories, flags and curves, as ``windpipe flags`` and ``/power-curves`` compute them."""
    events = pl.DataFrame(
        schema={
            "turbine": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
            "code": pl.String,
        }
    )
    held = frame.select("turbine", "timestamp")
    categories = window_categories(events, held, held, {})
    sites = {t: Site(rated_power_kw=2000) for t in frame["turbine"].unique()}
    config = FlagConfig(
        ranges={"wind_speed_mean": (0, 60), "power_mean": (-500, 20000)},
        flatline_signals=["wind_speed_mean", "power_mean"],
    )
    flags = window_flags(frame, categories, sites, config)
    return power_curves(frame, categories, flags, sites, CurveConfig())


def with_openoa(frame: pl.DataFrame) -> object:
    """The same with OpenOA: its flags, its density, the normalised speed, a pandas binning."""
    from openoa.utils import filters
    from openoa.utils import met_data_processing as met

    df = frame.to_pandas()
    results = []
    for _, one in df.groupby("turbine"):
        cols = ["wind_speed_mean", "power_mean"]
        stuck = filters.unresponsive_flag(one[cols], threshold=3, col=cols).any(axis=1)
        wrong = filters.range_flag(
            one[cols], lower=[0.0, -500.0], upper=[60.0, 20000.0], col=cols
        ).any(axis=1)
        ok = one[~(stuck | wrong)]
        rho = met.compute_air_density(
            ok["ambient_temperature_mean"] + 273.15, ok["wind_speed_mean"] * 0 + 101325.0
        )
        vn = ok["wind_speed_mean"] * (rho / 1.225) ** (1 / 3)
        k = np.floor(vn / 0.5 + 0.5) * 0.5
        results.append(ok.groupby(k)["power_mean"].agg(["mean", "std", "count"]))
    return results


def server(frame: pl.DataFrame, repeat: int) -> None:
    """A year in a fresh embedded target; ``/power-curves`` timed beside ``/aggregates``."""
    import httpx
    import uvicorn

    from windpipe.api import create_app
    from windpipe.postgres import database_url, libpq_conninfo, make_engine, stop_embedded
    from windpipe.settings import TurbineConfig, load_settings
    from windpipe.source.store import ensure_schema as ensure_source_schema
    from windpipe.testing import free_port
    from windpipe.warehouse.store import ensure_schema, replace_window

    turbines = sorted(frame["turbine"].unique().to_list())
    signals = ["wind_speed_mean", "power_mean", "ambient_temperature_mean"]
    with tempfile.TemporaryDirectory(prefix="windpipe-bench-") as tmp:
        settings = load_settings(
            data_dir=Path(tmp),
            turbines=[TurbineConfig(id=t, rated_power_kw=2000) for t in turbines],
            etl_variables=["wind_speed", "power", "ambient_temperature"],
            etl_aggregations=["mean"],
            api_max_range_days=400,
            api_statement_timeout_seconds=600,
            _env_file=None,
        )
        source, target = (make_engine(database_url(settings, n)) for n in ("source", "target"))
        try:
            ensure_source_schema(source)
            ensure_schema(target)
            long = frame.unpivot(index=["turbine", "timestamp"], on=signals, variable_name="signal")
            began = time.perf_counter()
            for month in range(12):
                lo = datetime(2023, month + 1, 1)
                hi = datetime(2023 + (month == 11), (month + 1) % 12 + 1, 1)
                part = long.filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi))
                replace_window(target, lo, hi, part, signals=signals, turbines=turbines)
            took = time.perf_counter() - began
            print(f"loaded {long.height:,} rows into the target in {took:.1f} s")
            app = create_app(
                settings,
                source_conninfo=libpq_conninfo(source.url),
                target_conninfo=libpq_conninfo(target.url),
            )
            port = free_port()
            config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
            uv = uvicorn.Server(config)
            thread = threading.Thread(target=uv.run, daemon=True)
            thread.start()
            while not uv.started:
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port}"
            params = {"start": "2023-01-01", "end": "2024-01-01", "format": "arrow"}
            with httpx.Client(base_url=base, timeout=600) as client:

                def get(path: str, **extra: str) -> None:
                    answer = client.get(path, params={**params, **extra})
                    answer.raise_for_status()

                curves = best(lambda: get("/power-curves"), repeat)
                raw = best(lambda: get("/aggregates", signals="wind_speed_mean,power_mean"), repeat)
            uv.should_exit = True
            thread.join(timeout=10)
            print(f"GET /power-curves (a year, {len(turbines)} turbines): {curves:8.2f} s")
            print(f"GET /aggregates of speed and power, the same windows:  {raw:8.2f} s")
            print(f"  ratio /power-curves : /aggregates = {curves / raw:.2f}")
        finally:
            source.dispose()
            target.dispose()
            stop_embedded(Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turbines", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-server", action="store_true")
    args = parser.parse_args()
    frame = year(args.turbines)
    print(f"{frame.height:,} windows ({args.turbines} turbines x {WINDOWS:,})")
    base = best(lambda: plain(frame), args.repeat)
    ours = best(lambda: windpipe(frame), args.repeat)
    print(f"today's plain binning:             {base:8.3f} s  (1.00)")
    print(f"windpipe flags + IEC curves:       {ours:8.3f} s  ({ours / base:.2f})")
    try:
        import openoa  # noqa: F401 - only whether it is installed
    except ImportError:
        print("OpenOA is not installed (a test-only dependency): no comparison")
    else:
        theirs = best(lambda: with_openoa(frame), args.repeat)
        print(f"OpenOA flags + density + binning:  {theirs:8.3f} s  ({theirs / base:.2f})")
        print(f"  OpenOA / windpipe = {theirs / ours:.2f}")
    if not args.no_server:
        server(frame, args.repeat)


if __name__ == "__main__":
    main()
