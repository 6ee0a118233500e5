"""The API's routes: data, variables, coverage, health."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from windpipe import catalog
from windpipe.api.deps import ReaderDep, SettingsDep
from windpipe.api.formats import MEDIA_TYPES, DataFormat, Encoder, negotiate
from windpipe.api.params import ERRORS, TURBINES_PATTERN, AcceptHeader, FormatParam
from windpipe.api.reader import Lease
from windpipe.api.schemas import (
    MOMENT_PATTERN,
    CoverageBody,
    Health,
    TurbineInfo,
    VariableInfo,
    check_range,
    check_turbines,
    parse_moment,
    parse_turbines,
    parse_variables,
)
from windpipe.api.security import KeyDep
from windpipe.errors import SourceUnavailableError
from windpipe.settings import Settings
from windpipe.source.contract import describe
from windpipe.source.store import TURBINE_IDS_SQL, TURBINES_SQL, select_range_sql

router = APIRouter()
#: Rows per page: one query each, keyset-paged. Arrow passes pages through as they are; the text
#: formats expand each page several times over while encoding it, so they read smaller ones.
PAGE_ROWS: dict[DataFormat, int] = {
    DataFormat.arrow: 131_072,
    DataFormat.json: 32_768,
    DataFormat.csv: 32_768,
}
#: Pages smaller than this are encoded on the event loop (a thread hop costs more).
_INLINE_ROWS = 4_096
_VARIABLES_PATTERN = "^({names})(,({names}))*$".format(names="|".join(catalog.VARIABLES))


def _variables_schema(schema: dict[str, Any]) -> None:
    """Document the accepted names as a pattern (the route's parser says what is wrong)."""
    for option in schema.get("anyOf", []):
        if option.get("type") == "array":
            option["items"]["pattern"] = _VARIABLES_PATTERN


_DATA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The samples, streamed in the format asked for.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "turbine": {"type": "string"},
                            "timestamp": {"type": "string", "format": "date-time"},
                            **{
                                v: {
                                    "type": ["number", "null"],
                                    "description": "null: missing or non-finite (NaN, ±Infinity)",
                                }
                                for v in catalog.VARIABLES
                            },
                        },
                        "required": ["turbine", "timestamp"],
                    },
                }
            },
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.arrow.stream": {
                "schema": {"type": "string", "format": "binary"}
            },
        },
    },
    **ERRORS,
}


class LeasedStream(StreamingResponse):
    """A streamed answer that gives its database connection back however it ends."""

    def __init__(self, content: AsyncIterator[bytes], lease: Lease, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.lease.release()  # also when the client left before the first byte


@router.get("/", include_in_schema=False)
def root() -> HTMLResponse:
    """A landing page: the dashboard and the interactive docs."""
    return HTMLResponse(LANDING)


LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>windpipe</title></head>
<body>
<h1>windpipe</h1>
<p>Wind-turbine SCADA data: the source's samples and the target's 10-minute aggregates.</p>
<ul>
<li><a href="ui">Dashboard</a>: the farm, each turbine, the data's quality (<code>/ui</code>)</li>
<li><a href="docs">API docs</a> (Swagger UI, <code>/docs</code>;
 also <a href="redoc">ReDoc</a>)</li>
<li><a href="openapi.json">OpenAPI document</a></li>
</ul>
</body></html>
"""


@router.get(
    "/data",
    responses=_DATA_RESPONSES,
    response_class=StreamingResponse,
    dependencies=[KeyDep],
)
async def get_data(
    reader: ReaderDep,
    settings: SettingsDep,
    start: Annotated[
        str,
        Query(
            description="Inclusive start, ISO 8601 date or datetime (UTC if no offset).",
            json_schema_extra={"pattern": MOMENT_PATTERN},
            examples=["2026-01-01", "2026-01-01T10:00:00Z"],
        ),
    ],
    end: Annotated[
        str,
        Query(
            description="Exclusive end, ISO 8601 date or datetime (UTC if no offset).",
            json_schema_extra={"pattern": MOMENT_PATTERN},
            examples=["2026-01-02", "2026-01-01T14:00:00+02:00"],
        ),
    ],
    variables: Annotated[
        list[str] | None,
        Query(
            description="Comma-separated and/or repeated; omitted means all variables. "
            f"Accepted: {', '.join(catalog.VARIABLES)}.",
            json_schema_extra=_variables_schema,
        ),
    ] = None,
    turbines: Annotated[
        list[str] | None,
        Query(
            description="Comma-separated and/or repeated turbine ids; omitted means every "
            "turbine (see /turbines).",
            json_schema_extra={"items": {"type": "string", "pattern": TURBINES_PATTERN}},
        ),
    ] = None,
    format: FormatParam = None,
    accept: AcceptHeader = None,
) -> StreamingResponse:
    """Samples with ``start <= timestamp < end``, by turbine then time, streamed.

    Every record carries its ``turbine``. JSON (default) is an array of objects; CSV has a header
    line; Arrow is an IPC stream (`application/vnd.apache.arrow.stream`) whose end-of-stream
    marker proves completeness.

    Non-finite values are served as the source holds them, as far as the format allows: JSON has
    no NaN or Infinity, so a value is ``null`` when it is missing *or* non-finite; CSV writes
    ``NaN``, ``inf``, ``-inf`` (missing: an empty field); Arrow carries the IEEE values (missing:
    null). Use CSV or Arrow to tell them apart.

    While the source table breaks its schema contract (a column missing or of another type), the
    answer is a 503 whose ``detail`` names the column, the type found and expected, and the fix.
    """
    lo, hi = parse_moment("start", start), parse_moment("end", end)
    check_range(lo, hi, settings.api_max_range_days)
    declared = settings.variables
    names = parse_variables(variables, list(declared))
    columns = {n: declared[n].column for n in names}
    chosen = format or negotiate(accept)
    page_rows = PAGE_ROWS[chosen]
    wanted = parse_turbines(turbines)

    lease = await reader.lease()  # 503 + Retry-After when no connection frees up in time
    try:
        if wanted is not None:
            fleet = [t.id for t in settings.fleet]
            if any(t not in fleet for t in wanted):  # only then is the source asked
                held = (await lease.query(TURBINE_IDS_SQL)).column("turbine").to_pylist()
                check_turbines(wanted, list(dict.fromkeys([*fleet, *held])))

        def page_sql(after: tuple[str, Any] | None = None) -> str:
            return select_range_sql(
                names, lo, hi, turbines=wanted, columns=columns, limit=page_rows, after=after
            )

        # The first page before answering: a dead database is a 503, not a broken 200, and an
        # empty range costs this one query.
        first = await lease.query(page_sql())
    except BaseException:
        lease.release()
        raise
    schema = pa.schema(
        [
            pa.field("turbine", pa.string(), nullable=False),
            pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        ]
        + [pa.field(n, pa.float64()) for n in names]
    )
    encoder = Encoder(chosen, schema)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield encoder.head()
            page = first
            while True:
                pending = None
                if page.num_rows == page_rows:  # more may follow: read ahead on this connection
                    after = (
                        page.column("turbine")[-1].as_py(),
                        page.column("timestamp")[-1].as_py(),
                    )
                    pending = lease.submit(page_sql(after))
                if page.num_rows <= _INLINE_ROWS:
                    yield encoder.page(page)
                else:
                    yield await run_in_threadpool(encoder.page, page)
                if pending is None:
                    break
                page = await pending
            yield encoder.tail()
        finally:
            lease.release()

    filename = f"windpipe_{lo:%Y%m%dT%H%M%S}_{hi:%Y%m%dT%H%M%S}.{chosen.value}"
    headers = {"Content-Disposition": f'inline; filename="{filename}"'}
    return LeasedStream(body(), lease, media_type=MEDIA_TYPES[chosen], headers=headers)


@router.get("/variables", responses=ERRORS, dependencies=[KeyDep])
def get_variables(settings: SettingsDep) -> list[VariableInfo]:
    """The variables ``/data`` can serve (the configured signals), with units."""
    return [
        VariableInfo(name=v.name, unit=v.unit, description=v.description)
        for v in settings.variables.values()
    ]


@router.get("/turbines", responses=ERRORS, dependencies=[KeyDep])
async def get_turbines(reader: ReaderDep, settings: SettingsDep) -> list[TurbineInfo]:
    """Every turbine, configured or found in the source: metadata, first and last sample, rows."""
    lease = await reader.lease()
    try:
        held = {row["turbine"]: row for row in (await lease.query(TURBINES_SQL)).to_pylist()}
    finally:
        lease.release()
    return _turbines(settings, held)


def _turbines(settings: Settings, held: dict[str, dict[str, Any]]) -> list[TurbineInfo]:
    answer = []
    for turbine in settings.fleet_of(list(held)):
        row = held.pop(turbine.id, {})
        answer.append(
            TurbineInfo(
                **vars(turbine),
                configured=settings.turbines_declared,
                first=row.get("first"),
                last=row.get("last"),
                rows=int(row.get("rows") or 0),
            )
        )
    for turbine_id, row in held.items():  # in the data, not (or no longer) configured
        answer.append(
            TurbineInfo(
                id=turbine_id,
                configured=False,
                first=row["first"],
                last=row["last"],
                rows=int(row["rows"]),
            )
        )
    return answer


@router.get("/coverage", responses=ERRORS, dependencies=[KeyDep])
async def get_coverage(reader: ReaderDep) -> CoverageBody:
    """First and last timestamp in the source (null when empty), and its row count.

    The count is exact up to 200,000 rows and the planner's estimate above (``rows_exact``), so
    this answers in milliseconds whatever the table's size.
    """
    first, last, rows, exact = await reader.coverage()
    return CoverageBody(first=first, last=last, rows=rows, rows_exact=exact)


@router.head("/health", include_in_schema=False)  # load balancers and probes send HEAD
@router.get("/health", responses={503: {"model": Health}})
async def get_health(reader: ReaderDep) -> JSONResponse:
    """200 when the source database answers and its table keeps the schema contract (the columns
    windpipe reads, of the types it reads them as); 503 when not, with the ``reason``: a missing
    or retyped column is named with the type found and expected. Asked anew on every call (one
    catalog query on a connection of its own); no key needed."""
    try:
        found = await reader.contract()
    except SourceUnavailableError:
        body = Health(
            status="unavailable",
            database="unavailable",
            contract="unknown",
            reason="the source database does not answer",
        )
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    if found:
        reason = describe(found)
        body = Health(status="unavailable", database="ok", contract="broken", reason=reason)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    body = Health(status="ok", database="ok", contract="ok")
    return JSONResponse(body.model_dump(exclude_none=True))
