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
from windpipe.source.store import (
    COLUMN_TYPES_SQL,
    STORED_STATISTICS,
    TURBINE_IDS_SQL,
    held_statistics,
    select_last_sql,
    select_range_sql,
    served_names,
)

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


_STATISTIC_TEXT = {
    "min": "the period's minimum",
    "max": "the period's maximum",
    "std": "the sample standard deviation of the period's samples",
    "count": "the period's sample count",
}
_SAMPLE = {
    "type": "object",
    "properties": {
        "turbine": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        **{
            name: {
                "type": ["number", "null"],
                "description": "null: missing or non-finite (NaN, ±Infinity)"
                if name == v
                else f"Served only once the source holds period statistics of {v} (an "
                f"imported 10-minute export): {_STATISTIC_TEXT[name.rpartition('__')[2]]}, "
                f"beside the period's mean in {v}; null on a raw sample's row",
            }
            for v in catalog.VARIABLES
            for name in served_names([v], {v: STORED_STATISTICS})
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
    last: Annotated[
        bool,
        Query(
            description="true: per turbine, only its latest row in [start, end) whose every "
            "requested variable is non-null (at most one row per turbine), e.g. a counter's "
            "last reading before a day starts. Default false: every row."
        ),
    ] = False,
    accept: AcceptHeader = None,
) -> StreamingResponse:
    """Samples with ``start <= timestamp < end``, by turbine then time, streamed.

    Every record carries its ``turbine``. JSON (default) is an array of objects; CSV has a header
    line; Arrow is an IPC stream (`application/vnd.apache.arrow.stream`) whose end-of-stream
    marker proves completeness.

    Period statistics: where the source holds a variable's statistics of periods (an imported
    10-minute export), each record also carries, right after the variable ``v`` (then the
    period's mean), ``v__min``, ``v__max``, ``v__std`` (sample standard deviation of the
    period's samples) and ``v__count`` (its sample count), those the source holds, as numbers
    (null on a raw sample's row). A source that never received statistics serves none of them.

    With ``last=true``, only each turbine's latest row in the range whose every requested
    variable is non-null (at most one per turbine; none for a turbine without one).

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
        # Asked on each request, on its own connection: statistics an import has just added are
        # served at once (a cached answer could hand the ETL a day's means without them).
        types = (await lease.query(COLUMN_TYPES_SQL)).to_pylist()
        statistics = held_statistics(
            {r["name"]: r["type"] for r in types if r["readable"]}, columns
        )

        def page_sql(after: tuple[str, Any] | None = None) -> str:
            if last:
                return select_last_sql(
                    names, lo, hi, turbines=wanted, columns=columns, statistics=statistics
                )
            return select_range_sql(
                names,
                lo,
                hi,
                turbines=wanted,
                columns=columns,
                statistics=statistics,
                limit=page_rows,
                after=after,
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
            if page.num_rows == page_rows and not last:  # more may follow: read ahead
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
        schema=record_schema(served_names(names, statistics)),
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
