"""The dashboard at ``/ui``: the farm, a turbine, the data's quality, drawn from the target.

Pages are small HTML shells; ``/ui/static/ui.js`` (ours) fetches the figures from the JSON
routes under ``/ui/api/`` and draws them with plotly.js, served from the pinned ``plotly`` package
(``/ui/plotly.min.js``): nothing is loaded from anywhere but the API itself, so the dashboard
works offline. The JSON routes ask for a key like the data routes when keys are configured.
"""

import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from windpipe import catalog
from windpipe.api.dashboard import (
    DEFAULT_POINTS,
    POINTS_RANGE,
    FarmWindow,
    farm_curves,
    farm_kpis,
    known_turbines,
    last_day,
    latest,
    overview,
    quality,
    rose_signal,
    source_spans,
    turbine_curve,
    turbine_view,
)
from windpipe.api.deps import ReaderDep, SettingsDep
from windpipe.api.pool import TargetSession, target_session
from windpipe.api.schemas import (
    MOMENT_PATTERN,
    check_range,
    check_turbines,
    parse_moment,
)
from windpipe.api.security import KeyDep
from windpipe.catalog import is_turbine_id
from windpipe.errors import QueryError
from windpipe.settings import Settings

router = APIRouter(prefix="/ui", include_in_schema=False)
STATIC = Path(__file__).with_name("ui_static")
#: Days the overview and the quality page show by default.
DEFAULT_DAYS = 30
#: Days the turbine view shows by default (ending with the turbine's latest window).
DEFAULT_TURBINE_DAYS = 7
#: The Dagster asset of a turbine's aggregates: ``aggregates_10min/<turbine>``.
DAGSTER_ASSET = "aggregates_10min"


def plotly_js() -> Path:
    """plotly.js as the pinned ``plotly`` package ships it."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def dagster_url(settings: Settings) -> str:
    """Where a browser on this machine reaches the Dagster UI."""
    host = settings.dagster_host
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{host}:{settings.dagster_port}"


def mount_static(app: Any) -> None:
    """Serve the dashboard's own script and style (hand-written, in this package)."""
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")


def _page(
    request: Request,
    settings: Settings,
    *,
    title: str,
    page: str,
    main: str,
    fleet: list[str] | None = None,
    **data: str,
) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    attrs = {
        "page": page,
        "root": root,
        "dagster": dagster_url(settings),
        "dagster-asset": DAGSTER_ASSET,
        **{k.replace("_", "-"): v for k, v in data.items()},
    }
    body_attrs = " ".join(f'data-{k}="{html.escape(v)}"' for k, v in attrs.items())
    turbines = "".join(
        f'<a href="{root}/ui/turbine/{quote(t)}">{html.escape(t)}</a>'
        for t in (fleet if fleet is not None else [t.id for t in settings.fleet])
    )
    text = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · windpipe</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}/ui/static/ui.css">
<script src="{root}/ui/plotly.min.js" defer></script>
<script src="{root}/ui/static/ui.js" defer></script>
</head>
<body {body_attrs}>
<header>
<strong>windpipe</strong>
<nav>
<a href="{root}/ui">Farm</a>
<a href="{root}/ui/quality">Data quality</a>
<span class="turbines">{turbines}</span>
<a href="{root}/docs">API docs</a>
<a href="{html.escape(dagster_url(settings))}" rel="noopener">Dagster</a>
</nav>
</header>
<main>
<h1>{html.escape(title)}</h1>
<p id="status" class="status">Loading…</p>
{main}
</main>
</body>
</html>
"""
    return HTMLResponse(text)


def _day(name: str, value: str | None) -> date | None:
    if not value:
        return None
    return parse_moment(name, value).date()


def _days(value: int) -> int:
    if not 1 <= value <= 366:
        raise QueryError(f"days={value} is outside 1..366")
    return value


async def _fleet(reader: ReaderDep, settings: Settings) -> list[str]:
    """The fleet's ids for the header: configured, or without [[turbines]] the source's."""
    if settings.turbines_declared:
        return [t.id for t in settings.fleet]
    return [t.id for t in settings.fleet_of(list(await source_spans(reader)))]


async def _farm_page(
    request: Request, settings: Settings, reader: ReaderDep, *, title: str, page: str, main: str
) -> HTMLResponse:
    """A page of the whole farm over the ``days`` up to ``end`` the query names."""
    return _page(
        request,
        settings,
        title=title,
        page=page,
        main=main,
        fleet=await _fleet(reader, settings),
        end=request.query_params.get("end", ""),
        days=request.query_params.get("days", str(DEFAULT_DAYS)),
        start=request.query_params.get("start", ""),
    )


@router.get("")
async def farm_page(request: Request, settings: SettingsDep, reader: ReaderDep) -> HTMLResponse:
    """The farm overview."""
    main = """
<section><h2>Latest 10-minute values</h2><table id="latest" class="grid"></table></section>
<section><h2>Completeness (windows held / expected) per day</h2>
<div id="completeness" class="chart short"></div></section>
<section><h2>Energy per day (MWh, from the 10-minute mean power)</h2>
<div id="energy" class="chart short"></div></section>
<h2>The farm's numbers</h2>
<form id="farm-range" class="range" method="get">
<label>from <input type="date" name="start" id="start"></label>
<label>to (exclusive) <input type="date" name="end" id="end"></label>
<button type="submit">Show</button>
</form>
<p id="kpi-hint" class="note"></p>
<section><h2>Energy, capacity factor, availability, lost production (lowest production-based
availability first)</h2><table id="farm-table" class="grid"></table></section>
<section><h2>Time-based availability per day (IEC 61400-26-1)</h2>
<div id="availability" class="chart short"></div></section>
<section><h2>Lost production by category (kWh, IEC 61400-26-2)</h2>
<div id="lost" class="chart short"></div></section>
<section><h2>Power-curve deviation from the farm's median curve (IEC 61400-12-1 curves)</h2>
<div id="deviation" class="chart short"></div></section>
"""
    return await _farm_page(
        request, settings, reader, title="Farm overview", page="farm", main=main
    )


def _series_heading(settings: Settings, variable: str) -> str:
    """A turbine chart's heading: the band is named only where both its bounds are aggregated
    (the page draws the mean alone otherwise)."""
    held = settings.etl_signals
    bounds = all(catalog.signal_name(variable, a) in held for a in ("min", "max"))
    return "10-minute mean, min-max band" if bounds else "10-minute mean"


@router.get("/turbine/{turbine}")
async def turbine_page(
    request: Request, settings: SettingsDep, reader: ReaderDep, turbine: str
) -> HTMLResponse:
    """One turbine: wind speed and power with their min-max band (where aggregated), the power
    curve, and a wind rose when a direction is aggregated."""
    if not is_turbine_id(turbine):
        return HTMLResponse("not a turbine id", status_code=404)
    direction = rose_signal(settings)
    rose = (
        ""
        if direction is None
        else "<section><h2>Wind rose: share of 10-minute windows by direction "
        f"({html.escape(direction)}) and wind speed</h2>\n"
        '<div id="rose" class="chart tall"></div></section>\n'
    )
    main = (
        """
<form id="range" class="range" method="get">
<label>from <input type="date" name="start" id="start"></label>
<label>to (exclusive) <input type="date" name="end" id="end"></label>
<button type="submit">Show</button>
<span id="dagster-days"></span>
</form>
<p id="resolution" class="note"></p>
<section><h2>Wind speed (m/s): """
        + _series_heading(settings, "wind_speed")
        + """</h2>
<div id="wind" class="chart"></div></section>
<section><h2>Power (kW): """
        + _series_heading(settings, "power")
        + """</h2>
<div id="power" class="chart"></div></section>
<section><h2>Power curve: 10-minute means, 0.5 m/s bins, the farm's median</h2>
<div id="curve" class="chart tall"></div></section>
<section><h2>IEC 61400-12-1 power curve: full-performance windows beside every window, the
normalised bins (mean &plusmn; standard deviation), the warranted curve</h2>
<div id="iec-curve" class="chart tall"></div></section>
<section><h2>Events</h2><table id="events" class="grid"></table></section>
"""
        + rose
    )
    spans = await source_spans(reader)
    fleet = [t.id for t in settings.fleet_of(list(spans))]
    async with target_session(request) as session:
        known = await known_turbines(session, settings, list(spans))
    if turbine not in known:  # as its data route says it, not a page that cannot draw
        return HTMLResponse(
            f"unknown turbine {turbine}; known: {', '.join(known) or 'none'}", status_code=404
        )
    first, last = spans.get(turbine, (None, None))
    return _page(
        request,
        settings,
        title=f"Turbine {turbine}",
        page="turbine",
        main=main,
        fleet=fleet,
        turbine=turbine,
        # Dagster has a partition for a fleet turbine's days with data, up to today.
        dagster_first=first.date().isoformat() if first and turbine in fleet else "",
        dagster_last=last.date().isoformat() if last and turbine in fleet else "",
        start=request.query_params.get("start", ""),
        end=request.query_params.get("end", ""),
    )


@router.get("/quality")
async def quality_page(request: Request, settings: SettingsDep, reader: ReaderDep) -> HTMLResponse:
    """Missing windows per turbine and day, and stale turbines."""
    main = """
<section><h2>Stale turbines</h2><table id="stale" class="grid"></table></section>
<section><h2>Missing 10-minute windows per day</h2>
<div id="missing" class="chart short"></div></section>
<section><h2>Days with missing windows</h2><table id="gaps" class="grid"></table></section>
<section><h2>Quality flags per turbine and day</h2>
<p id="flag-hint" class="note"></p>
<div id="flag-chart" class="chart short"></div>
<table id="flags" class="grid"></table></section>
"""
    return await _farm_page(
        request, settings, reader, title="Data quality", page="quality", main=main
    )


@router.get("/plotly.min.js")
def plotly_bundle() -> Response:
    """plotly.js, from the installed package (cached by the browser for a day)."""
    return FileResponse(
        plotly_js(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


# -- the figures, as JSON --------------------------------------------------------------------


@dataclass(frozen=True)
class _FarmFigure:
    """What a farm figure is computed from: the request (for the target session), the settings
    and the window the query names."""

    request: Request
    settings: Settings
    window: FarmWindow

    async def answer(
        self, figure: Callable[[TargetSession, Settings, FarmWindow], Awaitable[dict[str, Any]]]
    ) -> JSONResponse:
        """``figure`` computed on a target session, as JSON."""
        async with target_session(self.request) as session:
            return JSONResponse(await figure(session, self.settings, self.window))


async def _farm_figure(
    request: Request,
    settings: SettingsDep,
    reader: ReaderDep,
    end: Annotated[str | None, Query(pattern=MOMENT_PATTERN)] = None,
    days: int = DEFAULT_DAYS,
) -> _FarmFigure:
    """The query's ``end`` and ``days``, with each turbine's span in the source."""
    window = FarmWindow(end=_day("end", end), days=_days(days), spans=await source_spans(reader))
    return _FarmFigure(request, settings, window)


FarmFigureDep = Annotated[_FarmFigure, Depends(_farm_figure)]


@router.get("/api/overview", dependencies=[KeyDep])
async def overview_data(farm: FarmFigureDep) -> JSONResponse:
    """Latest values per turbine; completeness and energy per (turbine, day)."""
    return await farm.answer(overview)


@router.get("/api/quality", dependencies=[KeyDep])
async def quality_data(farm: FarmFigureDep) -> JSONResponse:
    """Missing windows per (turbine, day) and the stale turbines."""
    return await farm.answer(quality)


@router.get("/api/turbine/{turbine}", dependencies=[KeyDep])
async def turbine_data(
    request: Request,
    settings: SettingsDep,
    reader: ReaderDep,
    turbine: str,
    start: Annotated[str | None, Query(pattern=MOMENT_PATTERN)] = None,
    end: Annotated[str | None, Query(pattern=MOMENT_PATTERN)] = None,
    points: int = DEFAULT_POINTS,
) -> Response:
    """One turbine's series and power curve over [start, end) (default: its last 7 days).

    ``points``: how many points a series may have (the chart's pixel columns); a longer range is
    sent per bucket (mean, lowest minimum, highest maximum) and says so (``resolution_minutes``)."""
    if not POINTS_RANGE[0] <= points <= POINTS_RANGE[1]:
        raise QueryError(f"points={points} is outside {POINTS_RANGE[0]}..{POINTS_RANGE[1]}")
    async with target_session(request) as session:
        known = await known_turbines(session, settings, list(await source_spans(reader)))
        check_turbines([turbine], known)
        hi = parse_moment("end", end) if end else None
        lo = parse_moment("start", start) if start else None
        if hi is None:
            rows = await latest(session, settings, [turbine])
            hi = catalog.utc_midnight(last_day(rows) + timedelta(days=1))
            if lo is not None and lo >= hi:
                hi = lo + timedelta(days=DEFAULT_TURBINE_DAYS)
        if lo is None:
            lo = hi - timedelta(days=DEFAULT_TURBINE_DAYS)
        check_range(lo, hi, settings.api_max_range_days)
        body = await turbine_view(
            session,
            settings,
            turbine,
            lo,
            hi,
            points=points,
            cache=getattr(request.app.state, "curve_cache", None),
        )
    return Response(body, media_type="application/json")


async def _farm_range(
    session: TargetSession, settings: Settings, start: str | None, end: str | None
) -> tuple[date, date]:
    """The UTC days ``[first, last]`` of ``start`` to ``end`` (exclusive); by default the
    :data:`DEFAULT_DAYS` days up to the latest day the target holds."""
    stop = _day("end", end)
    last = stop - timedelta(days=1) if stop is not None else None
    first = _day("start", start)
    if last is None:
        if first is not None:
            last = first + timedelta(days=DEFAULT_DAYS - 1)
        else:
            turbines = await known_turbines(session, settings)
            last = last_day(await latest(session, settings, turbines))
    if first is None:
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    check_range(
        catalog.utc_midnight(first),
        catalog.utc_midnight(last + timedelta(days=1)),
        settings.api_max_range_days,
    )
    return first, last


@router.get("/api/kpis", dependencies=[KeyDep])
async def kpis_data(
    request: Request,
    settings: SettingsDep,
    start: Annotated[str | None, Query(pattern=MOMENT_PATTERN)] = None,
    end: Annotated[str | None, Query(pattern=MOMENT_PATTERN)] = None,
) -> JSONResponse:
    """The farm table, availability per (turbine, day) and lost production per category over the
    UTC days [start, end) (default: the last 30 days held), from the stored daily figures."""
    async with target_session(request) as session:
        first, last = await _farm_range(session, settings, start, end)
        return JSONResponse(await farm_kpis(session, settings, first, last))


@router.get("/api/curves", dependencies=[KeyDep])
async def curves_data(
    request: Request,
    settings: SettingsDep,
    reader: ReaderDep,
    start: Annotated[str | None, Query(pattern=MOMENT_PATTERN)] = None,
    end: Annotated[str | None, Query(pattern=MOMENT_PATTERN)] = None,
) -> JSONResponse:
    """The farm's median IEC power curve over [start, end) and the turbines ranked by their
    deviation from it."""
    async with target_session(request) as session:
        first, last = await _farm_range(session, settings, start, end)
        body = await farm_curves(
            session,
            reader,
            settings,
            catalog.utc_midnight(first),
            catalog.utc_midnight(last + timedelta(days=1)),
        )
    body.update(first=first.isoformat(), last=last.isoformat())
    return JSONResponse(body)


@router.get("/api/turbine/{turbine}/curve", dependencies=[KeyDep])
async def turbine_curve_data(
    request: Request,
    settings: SettingsDep,
    reader: ReaderDep,
    turbine: str,
    start: Annotated[str, Query(pattern=MOMENT_PATTERN)],
    end: Annotated[str, Query(pattern=MOMENT_PATTERN)],
) -> JSONResponse:
    """One turbine's IEC power curve over [start, end): its bins with their spread, the
    warranted curve when configured, its full-performance windows beside every window, and its
    events."""
    async with target_session(request) as session:
        known = await known_turbines(session, settings, list(await source_spans(reader)))
        check_turbines([turbine], known)
        lo, hi = parse_moment("start", start), parse_moment("end", end)
        check_range(lo, hi, settings.api_max_range_days)
        return JSONResponse(await turbine_curve(session, reader, settings, turbine, lo, hi))
