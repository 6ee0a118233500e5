"""Power curves for a year of a 10-turbine farm (52,560 windows each): the server time of
``GET /power-curves`` beside today's plain binning of the same windows, and windpipe's flags and
curves beside OpenOA doing the same on the same frame, in the same run.

    uv run python bench/power_curves.py                 # 10 turbines x 365 days
    uv run python bench/power_curves.py --turbines 2    # smaller
    uv run python bench/power_curves.py --no-server     # the in-process figures only
    uv run python bench/power_curves.py --no-server --repeat 11   # as docs/performance.md

In process, on one frame of 10-minute windows (speed, power, temperature), each stage timed in
turns with the others (so that a busy machine slows them alike), the median of ``--repeat``
rounds: (a) today's plain binning (0.5 m/s bins of every window's speed, mean power); (b)
windpipe: the IEC 61400-26-1 categories, the flags and the curves (density, normalisation, bins,
completeness); (c) OpenOA (if installed, a test-only dependency) on the same windows as a pandas
frame (the conversion is timed apart, not charged to it): ``unresponsive_flag`` and
``range_flag`` on speed and power, per turbine; then ``compute_air_density``, the normalised
speed and a pandas binning per turbine of the windows neither flag marks.

Like for like, OpenOA's two flags face windpipe's same two (``out_of_range`` and ``flatline`` on
speed and power); windpipe's whole flag stage adds the categories, ``icing_suspect`` and
``stopped_with_wind``; its curve stage also leaves out events' and thin windows, and rules on
each curve's completeness. Ratios printed are OpenOA's time over windpipe's: above 1, windpipe
is ahead. With the server: the year is loaded into a fresh embedded target, and
``/power-curves`` (Arrow) is timed against ``/aggregates`` of the same windows.
"""

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import pandas as pd

from windpipe.analytics.flags import FlagConfig, flatline_flags, out_of_range_flags, window_flags
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


#: The two signals both sides flag, and their ranges.
CHECKED = ["wind_speed_mean", "power_mean"]
RANGES = {"wind_speed_mean": (0.0, 60.0), "power_mean": (-500.0, 20000.0)}


def rounds(stages: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Each stage's median time (s) over ``repeat`` rounds, each round running every stage once,
    in turns, after one untimed warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in stages}
    for n in range(repeat + 1):
        for name, run in stages.items():
            began = time.perf_counter()
            run()
            if n:
                times[name].append(time.perf_counter() - began)
    return {name: statistics.median(taken) for name, taken in times.items()}


def windpipe_inputs(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, Site], FlagConfig]:
    """What ``windpipe flags`` and ``/power-curves`` hold beside the windows: no events, a site
    per turbine, the two signals' ranges and flatlines."""
    events = pl.DataFrame(
        schema={
            "turbine": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
            "code": pl.String,
        }
    )
    sites = {t: Site(rated_power_kw=2000) for t in frame["turbine"].unique()}
    return events, sites, FlagConfig(ranges=RANGES, flatline_signals=CHECKED)


def windpipe_categories(frame: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """The windows' IEC 61400-26-1 categories (every window held, no event)."""
    held = frame.select("turbine", "timestamp")
    return window_categories(events, held, held, {})


def windpipe_two_flags(frame: pl.DataFrame) -> object:
    """OpenOA's two flags, windpipe's way: ``out_of_range`` and ``flatline`` on speed and power."""
    return pl.concat([out_of_range_flags(frame, RANGES), flatline_flags(frame, CHECKED)])


def windpipe(frame: pl.DataFrame) -> object:
    """Categories, flags and curves, as ``windpipe flags`` and ``/power-curves`` compute them."""
    events, sites, config = windpipe_inputs(frame)
    categories = windpipe_categories(frame, events)
    flags = window_flags(frame, categories, sites, config)
    return power_curves(frame, categories, flags, sites, CurveConfig())


def openoa_flags(df: "pd.DataFrame") -> list["pd.Series"]:
    """OpenOA's ``unresponsive_flag`` and ``range_flag`` on speed and power, per turbine: which
    windows either marks."""
    from openoa.utils import filters

    marked = []
    for _, one in df.groupby("turbine"):
        stuck = filters.unresponsive_flag(one[CHECKED], threshold=3, col=CHECKED).any(axis=1)
        wrong = filters.range_flag(
            one[CHECKED],
            lower=[RANGES[c][0] for c in CHECKED],
            upper=[RANGES[c][1] for c in CHECKED],
            col=CHECKED,
        ).any(axis=1)
        marked.append(stuck | wrong)
    return marked


def openoa_curves(df: "pd.DataFrame", marked: list["pd.Series"]) -> object:
    """The curves with OpenOA: its density, the normalised speed, a pandas binning per turbine
    of the windows no flag marks."""
    from openoa.utils import met_data_processing as met

    results = []
    for (_, one), bad in zip(df.groupby("turbine"), marked, strict=True):
        ok = one[~bad]
        rho = met.compute_air_density(
            ok["ambient_temperature_mean"] + 273.15, ok["wind_speed_mean"] * 0 + 101325.0
        )
        vn = ok["wind_speed_mean"] * (rho / 1.225) ** (1 / 3)
        k = np.floor(vn / 0.5 + 0.5) * 0.5
        results.append(ok.groupby(k)["power_mean"].agg(["mean", "std", "count"]))
    return results


def with_openoa(df: "pd.DataFrame") -> object:
    """Both OpenOA stages in one pass over the turbines, as one would write it."""
    from openoa.utils import filters
    from openoa.utils import met_data_processing as met

    results = []
    for _, one in df.groupby("turbine"):
        stuck = filters.unresponsive_flag(one[CHECKED], threshold=3, col=CHECKED).any(axis=1)
        wrong = filters.range_flag(
            one[CHECKED],
            lower=[RANGES[c][0] for c in CHECKED],
            upper=[RANGES[c][1] for c in CHECKED],
            col=CHECKED,
        ).any(axis=1)
        ok = one[~(stuck | wrong)]
        rho = met.compute_air_density(
            ok["ambient_temperature_mean"] + 273.15, ok["wind_speed_mean"] * 0 + 101325.0
        )
        vn = ok["wind_speed_mean"] * (rho / 1.225) ** (1 / 3)
        k = np.floor(vn / 0.5 + 0.5) * 0.5
        results.append(ok.groupby(k)["power_mean"].agg(["mean", "std", "count"]))
    return results


def in_process(frame: pl.DataFrame, repeat: int) -> None:
    """Every stage of both sides timed in turns; their medians and ratios."""
    events, sites, config = windpipe_inputs(frame)
    categories = windpipe_categories(frame, events)
    flags = window_flags(frame, categories, sites, config)
    stages: dict[str, Callable[[], object]] = {
        "plain": lambda: plain(frame),
        "categories": lambda: windpipe_categories(frame, events),
        "two flags": lambda: windpipe_two_flags(frame),
        "all flags": lambda: window_flags(frame, categories, sites, config),
        "curves": lambda: power_curves(frame, categories, flags, sites, CurveConfig()),
        "windpipe": lambda: windpipe(frame),
    }
    try:
        import openoa  # noqa: F401 - only whether it is installed
    except ImportError:
        openoa_here = False
    else:
        openoa_here = True
        df = frame.to_pandas()
        marked = openoa_flags(df)
        stages |= {
            "to pandas": frame.to_pandas,
            "openoa flags": lambda: openoa_flags(df),
            "openoa curves": lambda: openoa_curves(df, marked),
            "openoa": lambda: with_openoa(df),
        }
    took = rounds(stages, repeat)
    like = took["two flags"] + took["curves"]
    base = took["plain"]
    print(f"median of {repeat} rounds, each stage in turn with the others")
    print(f"today's plain binning:                      {base:8.4f} s")
    rows = [
        ("categories (IEC 61400-26-1)", "categories"),
        ("flags, out_of_range + flatline (like OpenOA)", "two flags"),
        ("flags, all four", "all flags"),
        ("curves (usable, density, bins, completeness)", "curves"),
        ("categories + all flags + curves, in one go", "windpipe"),
    ]
    print("windpipe:")
    for label, key in rows:
        print(f"  {label:46s} {took[key]:8.4f} s")
    if not openoa_here:
        print("OpenOA is not installed (a test-only dependency): no comparison")
        return
    theirs_flags, theirs_curves, theirs = (
        took["openoa flags"],
        took["openoa curves"],
        took["openoa"],
    )
    print(f"OpenOA (on a pandas frame; the conversion, not charged: {took['to pandas']:.4f} s):")
    print(f"  {'unresponsive_flag + range_flag':46s} {theirs_flags:8.4f} s")
    print(f"  {'density, normalised speed, binning':46s} {theirs_curves:8.4f} s")
    print(f"  {'flags + curves, in one go':46s} {theirs:8.4f} s")
    print("OpenOA / windpipe (above 1: windpipe ahead):")
    ratios = [
        ("flags, like for like", theirs_flags / took["two flags"]),
        ("curves", theirs_curves / took["curves"]),
        ("two flags + curves, like for like", (theirs_flags + theirs_curves) / like),
        ("in one go, all of windpipe's (categories, 4 flags)", theirs / took["windpipe"]),
    ]
    for label, ratio in ratios:
        print(f"  {label:51s} {ratio:6.2f}")


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
    parser.add_argument("--repeat", type=int, default=9, help="in-process rounds (median)")
    parser.add_argument("--server-repeat", type=int, default=3, help="requests each (best)")
    parser.add_argument("--no-server", action="store_true")
    args = parser.parse_args()
    frame = year(args.turbines)
    print(f"{frame.height:,} windows ({args.turbines} turbines x {WINDOWS:,})")
    in_process(frame, args.repeat)
    if not args.no_server:
        server(frame, args.server_repeat)


if __name__ == "__main__":
    main()
