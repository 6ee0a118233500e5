"""The source's samples: ``GET /data`` streams them, ``GET /variables`` names what it can serve."""

from collections.abc import AsyncGenerator
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from windpipe import catalog
from windpipe.api.deps import ReaderDep, SettingsDep
from windpipe.api.formats import DataFormat, negotiate
from windpipe.api.params import (
    ERRORS,
    AcceptHeader,
    End,
    FormatParam,
    Start,
    Turbines,
    streamed,
)
from windpipe.api.schemas import (
    VariableInfo,
    check_turbines,
    parse_range,
    parse_turbines,
    parse_variables,
)
from windpipe.api.security import KeyDep
from windpipe.api.streaming import record_schema, stream_pages
from windpipe.source.store import TURBINE_IDS_SQL, select_range_sql

router = APIRouter(tags=["samples"], responses=ERRORS, dependencies=[KeyDep])
#: Rows per page: one query each, keyset-paged. Arrow passes pages through as they are; the text
#: formats expand each page several times over while encoding it, so they read smaller ones.
PAGE_ROWS: dict[DataFormat, int] = {
    DataFormat.arrow: 131_072,
    DataFormat.json: 32_768,
    DataFormat.csv: 32_768,
}
_VARIABLES_PATTERN = "^({names})(,({names}))*$".format(names="|".join(catalog.VARIABLES))


def _variables_schema(schema: dict[str, Any]) -> None:
    """Document the accepted names as a pattern (the route's parser says what is wrong)."""
    for option in schema.get("anyOf", []):
        if option.get("type") == "array":
            option["items"]["pattern"] = _VARIABLES_PATTERN


_SAMPLE = {
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
}


@router.get(
    "/data",
    summary="Stream the samples of a time range",
    responses=streamed("The samples, streamed in the format asked for.", _SAMPLE),
    response_class=StreamingResponse,
)
async def get_data(
    reader: ReaderDep,
    settings: SettingsDep,
    start: Start,
    end: End,
    variables: Annotated[
        list[str] | None,
        Query(
            description="Comma-separated and/or repeated; omitted means all variables. "
            f"Accepted: {', '.join(catalog.VARIABLES)}.",
            json_schema_extra=_variables_schema,
        ),
    ] = None,
    turbines: Turbines = None,
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
    lo, hi = parse_range(start, end, settings.api_max_range_days)
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

    async def pages() -> AsyncGenerator[pa.Table, None]:
        page = first
        while True:
            pending = None
            if page.num_rows == page_rows:  # more may follow: read ahead on this connection
                after = (
                    page.column("turbine")[-1].as_py(),
                    page.column("timestamp")[-1].as_py(),
                )
                pending = lease.submit(page_sql(after))
            yield page
            if pending is None:
                break
            page = await pending

    return stream_pages(
        pages(),
        lease,
        chosen=chosen,
        schema=record_schema(names),
        name="windpipe",
        start=lo,
        end=hi,
    )


@router.get("/variables", summary="List the variables /data serves")
def get_variables(settings: SettingsDep) -> list[VariableInfo]:
    """The variables ``/data`` can serve (the configured signals), with units."""
    return [
        VariableInfo(name=v.name, unit=v.unit, description=v.description)
        for v in settings.variables.values()
    ]
