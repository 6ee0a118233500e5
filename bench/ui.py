"""The dashboard on a year: server time of the turbine view and browser draw time, and screenshots.

Seeds a year of a three-turbine farm (5-minute samples) in a fresh embedded PostgreSQL, loads its
10-minute aggregates with the real ETL through a live API (52,560 windows per turbine), cuts one
gap for the quality page to show, then times:

- server: ``GET /ui/api/turbine/WTG02`` over the whole year (the 6 series decimated to the
  1,200 points a 1280 px page asks for, the power curve's density and bins, the farm's median:
  cached after the first request, which is timed on its own), and ``/ui/api/overview``, median
  of 7 after one warm-up;
- browser: each page opened in headless Chromium, its charts' own draw time (``Plotly.newPlot``
  to the next paint, as the page records it) and the wall time until the page says it is drawn.

``--screenshots DIR`` also saves the pages as PNGs (the README's come from here).

    uv run python bench/ui.py [--screenshots docs/img]
"""

import argparse
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api.ui_browser import chromium, find_chromium
from tests.conftest import fresh_data_dir, new_database, serve

from windpipe.api import create_app
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import database_url, libpq_conninfo
from windpipe.settings import TurbineConfig, load_settings
from windpipe.source import store as source_store
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source

FIRST = date(2025, 12, 1)
DAYS = 365
TURBINES = ["WTG01", "WTG02", "WTG03"]


def _median_ms(client: httpx.Client, path: str, params: dict[str, str], runs: int = 7) -> float:
    client.get(path, params=params).raise_for_status()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path, params=params)
        response.raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshots", type=Path, default=None)
    args = parser.parse_args()
    last = FIRST + timedelta(days=DAYS - 1)
    with fresh_data_dir("windpipe-bench-ui-") as data_dir:
        turbines = [TurbineConfig(id=t, rated_power_kw=2000.0) for t in TURBINES]
        settings = load_settings(data_dir=data_dir, turbines=turbines, _env_file=None)
        server = database_url(settings, "target")
        with (
            new_database(server, "bench_ui_source") as source,
            new_database(server, "bench_ui_target") as target,
        ):
            source_store.ensure_schema(source)
            begin = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
            started = time.perf_counter()
            seed_source(
                source, begin, begin + timedelta(days=DAYS), turbines=farm(3), freq="5min", seed=11
            )
            print(f"seeded a year of 3 turbines at 5 min in {time.perf_counter() - started:.1f} s")
            app = create_app(
                settings,
                source_conninfo=libpq_conninfo(source.url),
                target_conninfo=libpq_conninfo(target.url),
            )
            with serve(app) as api:
                started = time.perf_counter()
                with ApiClient(api.url) as client:
                    run_range(
                        FIRST,
                        last,
                        client=client,
                        engine=target,
                        variables=["wind_speed", "power"],
                        aggregations=["mean", "min", "max", "std"],
                        turbines=TURBINES,
                    )
                print(f"loaded its aggregates in {time.perf_counter() - started:.1f} s")
                with target.begin() as conn:  # a turbine that stopped reporting for 10 hours
                    conn.execute(
                        text(
                            "DELETE FROM data d USING signal s WHERE s.id = d.signal_id AND "
                            "s.turbine = 'WTG03' AND d.timestamp >= :lo AND d.timestamp < :hi"
                        ),
                        {
                            "lo": datetime(last.year, last.month, last.day, tzinfo=UTC)
                            - timedelta(days=4),
                            "hi": datetime(last.year, last.month, last.day, tzinfo=UTC)
                            - timedelta(hours=86),
                        },
                    )
                    conn.execute(text("ANALYZE"))
                year = {"start": FIRST.isoformat(), "end": (last + timedelta(days=1)).isoformat()}
                with httpx.Client(base_url=api.url, timeout=60) as client:
                    view = {**year, "points": "1200"}
                    started = time.perf_counter()
                    size = len(client.get("/ui/api/turbine/WTG02", params=view).content)
                    first_ms = (time.perf_counter() - started) * 1000
                    turbine_ms = _median_ms(client, "/ui/api/turbine/WTG02", view)
                    overview_ms = _median_ms(client, "/ui/api/overview", {})
                    quality_ms = _median_ms(client, "/ui/api/quality", {})
                    aggregates_ms = _median_ms(
                        client,
                        "/aggregates",
                        {**year, "turbines": "WTG02", "format": "arrow"},
                        runs=3,
                    )
                print(
                    f"server, median of 7: turbine view over the year {turbine_ms:.0f} ms "
                    f"(first, farm curves not cached: {first_ms:.0f} ms; "
                    f"{size / 1e3:.0f} kB of JSON); overview {overview_ms:.0f} ms; "
                    f"quality {quality_ms:.0f} ms; /aggregates a year of one turbine as Arrow "
                    f"{aggregates_ms:.0f} ms (median of 3)"
                )
                binary = find_chromium()
                if binary is None:
                    print("no Chromium on PATH: browser times skipped")
                    return
                pages = {
                    "overview": "/ui",
                    "turbine-year": f"/ui/turbine/WTG02?start={year['start']}&end={year['end']}",
                    "turbine-week": "/ui/turbine/WTG02",
                    "quality": "/ui/quality",
                }
                with chromium(binary, width=1280, height=900) as page:
                    for name, path in pages.items():
                        draws, walls = [], []
                        for _ in range(3):
                            walls.append(page.open(api.url + path) * 1000)
                            draws.append(float(page.evaluate("document.body.dataset.drawMs")))
                        charts = page.charts()
                        points = {k: v["points"] for k, v in charts.items()}
                        print(
                            f"browser {name}: charts drawn in {statistics.median(draws):.0f} ms, "
                            f"page ready {statistics.median(walls):.0f} ms (median of 3); "
                            f"points {points}"
                        )
                        if args.screenshots is not None:
                            page.screenshot(args.screenshots / f"ui-{name}.png")
                    foreign = page.foreign_requests()
                    print(f"requests beyond 127.0.0.1: {len(foreign)}; problems: {page.problems}")


if __name__ == "__main__":
    main()
