"""The dashboard's IEC power curves on a year of a 10-turbine farm (52,560 windows each): server
time and the page drawn in headless Chromium, beside today's plain curve, in one run.

    uv run python bench/power_curves_ui.py                 # 10 turbines x 365 days
    uv run python bench/power_curves_ui.py --turbines 3    # smaller

The year (``bench/power_curves.py``'s synthetic frame: speed, power, temperature) is written into
a fresh embedded target; a live API on loopback serves the dashboard. Timed: the first request
(the plain view's computes the farm's median curve) and the median of ``--repeat`` more:

- server: ``/ui/api/turbine/WTG02/curve`` (the IEC curve: categories, flags, density, bins, the
  windows as points) beside ``/ui/api/turbine/WTG02`` (today's view: series, plain binned curve,
  density, farm median) over the same year; and ``/ui/api/curves`` (every turbine's IEC curve,
  the farm's median, the deviation ranking);
- browser: the turbine page over the year, the IEC chart's own draw time beside the plain
  curve's (``Plotly.newPlot`` to the next paint, as the page records them) and the whole page.
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.api.ui_browser import chromium, find_chromium

from power_curves import year  # type: ignore[import-not-found]


def _median_ms(
    client: httpx.Client, path: str, params: dict[str, str], repeat: int
) -> tuple[float, float]:
    """The first request's ms (the warm-up: the plain view computes the farm's median curve,
    kept a minute) and the median of ``repeat`` more."""
    times = []
    for _ in range(1 + repeat):
        began = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        times.append((time.perf_counter() - began) * 1000)
    return times[0], statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turbines", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import uvicorn

    from windpipe.api import create_app
    from windpipe.postgres import database_url, libpq_conninfo, make_engine, stop_embedded
    from windpipe.settings import TurbineConfig, load_settings
    from windpipe.source.store import ensure_schema as ensure_source_schema
    from windpipe.testing import free_port
    from windpipe.warehouse.store import ensure_schema, replace_window

    frame = year(args.turbines)
    turbines = sorted(frame["turbine"].unique().to_list())
    signals = ["wind_speed_mean", "power_mean", "ambient_temperature_mean"]
    with tempfile.TemporaryDirectory(prefix="windpipe-bench-") as tmp:
        settings = load_settings(
            data_dir=Path(tmp),
            turbines=[
                TurbineConfig(
                    id=t,
                    rated_power_kw=2000,
                    power_curve=((3, 0), (12, 2000), (25, 2000)) if t == "WTG02" else None,
                )
                for t in turbines
            ],
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
            for month in range(12):
                lo = datetime(2023, month + 1, 1)
                hi = datetime(2023 + (month == 11), (month + 1) % 12 + 1, 1)
                part = long.filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi))
                replace_window(target, lo, hi, part, signals=signals, turbines=turbines)
            app = create_app(
                settings,
                source_conninfo=libpq_conninfo(source.url),
                target_conninfo=libpq_conninfo(target.url),
            )
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port}"
            span = {"start": "2023-01-01", "end": "2024-01-01"}
            with httpx.Client(base_url=base, timeout=600) as client:
                first_iec, iec = _median_ms(
                    client, "/ui/api/turbine/WTG02/curve", span, args.repeat
                )
                size = len(client.get("/ui/api/turbine/WTG02/curve", params=span).content)
                plain_params = {**span, "points": "1200"}
                first_plain, plain = _median_ms(
                    client, "/ui/api/turbine/WTG02", plain_params, args.repeat
                )
                first_farm, farm = _median_ms(client, "/ui/api/curves", span, args.repeat)
            each = frame.height // len(turbines)
            print(f"a year of {len(turbines)} turbines, {each:,} windows each (first request, then")
            print("the median of the next; the plain view's first computes the farm's median)")
            print(
                f"server: /ui/api/turbine/WTG02/curve (IEC)  {first_iec:8.0f} {iec:8.0f} ms "
                f"({size / 1e3:.0f} kB)"
            )
            print(f"server: /ui/api/turbine/WTG02 (today's)     {first_plain:8.0f} {plain:8.0f} ms")
            print(f"  ratio IEC : today's = {iec / plain:.2f}")
            print(f"server: /ui/api/curves (farm ranking)       {first_farm:8.0f} {farm:8.0f} ms")
            binary = find_chromium()
            if binary is None:
                print("browser: no Chromium on PATH, skipped")
            else:
                with chromium(binary) as page:
                    url = f"{base}/ui/turbine/WTG02?start=2023-01-01&end=2024-01-01"
                    page.open(url, timeout=600)  # warm-up
                    runs = []
                    for _ in range(args.repeat):
                        total = page.open(url, timeout=600)
                        charts = page.charts()
                        runs.append(
                            (charts["iec-curve"]["draw_ms"], charts["curve"]["draw_ms"], total)
                        )
                    assert page.evaluate("document.body.dataset.error || ''") == ""
                    drawn_iec = statistics.median(r[0] for r in runs)
                    drawn_plain = statistics.median(r[1] for r in runs)
                    ready = statistics.median(r[2] for r in runs) * 1000
                print(
                    f"browser: IEC chart drawn {drawn_iec:6.0f} ms beside today's curve "
                    f"{drawn_plain:6.0f} ms (ratio {drawn_iec / drawn_plain:.2f}); "
                    f"page ready {ready:6.0f} ms"
                )
            server.should_exit = True
            thread.join(timeout=10)
        finally:
            source.dispose()
            target.dispose()
            stop_embedded(Path(tmp))


if __name__ == "__main__":
    main()
