"""``GET /aggregates``: the target's windows over HTTP, validated and encoded like ``/data``."""

from collections.abc import AsyncGenerator
from datetime import datetime, timedelta
from typing import Annotated

import polars as pl
import pyarrow as pa
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from windpipe.api.dashboard import known_turbines
from windpipe.api.deps import SettingsDep
from windpipe.api.formats import negotiate
from windpipe.api.params import ERRORS, AcceptHeader, End, FormatParam, Start, Turbines, streamed
from windpipe.api.pool import TargetSession, open_session
from windpipe.api.schemas import check_turbines, listed, parse_range, parse_turbines, shown
from windpipe.api.security import KeyDep
from windpipe.api.streaming import record_schema, stream_pages
from windpipe.errors import QueryError
from windpipe.warehouse import queries

router = APIRouter(tags=["aggregates"], responses=ERRORS, dependencies=[KeyDep])

#: One page is one turbine over at most this long: ~4,500 windows of 10 minutes per signal.
PAGE_SPAN = timedelta(days=31)

_WINDOW = {
    "type": "object",
    "properties": {
        "turbine": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
    },
    "additionalProperties": {"type": ["number", "null"]},
    "required": ["turbine", "timestamp"],
}


def parse_signals(
    values: list[str] | None, accepted: list[str], *, default: list[str]
) -> list[str]:
    """Signals asked for (repeated and/or comma-separated), ``default`` when none is named."""
    names = listed(values) or None  # the same list forms as turbines=
    if names is None:
        return list(default)
    for name in names:
        if name not in accepted:
            raise QueryError(f"unknown signal {shown(name)}; accepted: {', '.join(accepted)}")
    return names


def _pages(
    turbines: list[str], start: datetime, end: datetime
) -> list[tuple[str, datetime, datetime]]:
    pages = []
    for turbine in turbines:
        lo = start
        while lo < end:
            hi = min(end, lo + PAGE_SPAN)
            pages.append((turbine, lo, hi))
            lo = hi
    return pages


def _wide(long: pa.Table, signals: list[str], schema: pa.Schema) -> pa.Table:
    """Long rows (turbine, timestamp, signal, value) as one record per window, in ``schema``."""
    frame = pl.from_arrow(long)
    assert isinstance(frame, pl.DataFrame)
    wide = frame.pivot(on="signal", index=["turbine", "timestamp"], values="value")
    wide = wide.with_columns(
        [pl.lit(None, pl.Float64).alias(n) for n in signals if n not in wide.columns]
    )
    wide = wide.select(
        pl.col("turbine"),
        pl.col("timestamp").dt.replace_time_zone("UTC"),
        *[pl.col(n).cast(pl.Float64) for n in signals],
    ).sort("timestamp")
    return pa.Table.from_arrays([wide[c].to_arrow() for c in wide.columns], schema=schema)


@router.get(
    "/aggregates",
    summary="Stream the 10-minute aggregates of a time range",
    responses=streamed(
        "One record per (turbine, window), streamed in the format asked for.", _WINDOW
    ),
    response_class=StreamingResponse,
)
async def get_aggregates(
    request: Request,
    settings: SettingsDep,
    start: Start,
    end: End,
    signals: Annotated[
        list[str] | None,
        Query(
            description="Comma-separated and/or repeated signal names (`<variable>_"
            "<aggregation>`, e.g. `wind_speed_mean,power_max`); omitted means the signals the "
            "ETL writes.",
        ),
    ] = None,
    turbines: Turbines = None,
    format: FormatParam = None,
    accept: AcceptHeader = None,
) -> StreamingResponse:
    """The target's aggregates with ``start <= window start < end``: one record per turbine and
    window, a column per signal (null where a signal has no row), by turbine then time, streamed.

    JSON (default) is an array of objects; CSV has a header line; Arrow is an IPC stream whose
    end-of-stream marker proves completeness. Omitting ``turbines`` means every turbine the
    target holds or the configuration declares. Read as the API's read-only role.
    """
    lo, hi = parse_range(start, end, settings.api_max_range_days)
    wanted = parse_turbines(turbines)
    chosen = format or negotiate(accept)
    session: TargetSession = await open_session(request)
    try:
        registered: list[str] = []
        if session.ready:
            registered = (await session.query(queries.SIGNALS_SQL)).column("name").to_pylist()
        accepted = list(dict.fromkeys([*settings.etl_signals, *sorted(set(registered))]))
        names = parse_signals(signals, accepted, default=settings.etl_signals)
        known = await known_turbines(session, settings)
        if wanted is not None:
            check_turbines(wanted, known)
        chosen_turbines = wanted if wanted is not None else known
        pages = _pages(chosen_turbines, lo, hi) if session.ready else []
        schema = record_schema(names)
        # The first page before answering: a target that does not answer is a 503, not a cut 200.
        first = (
            await session.query(
                queries.aggregates_sql(names, pages[0][1], pages[0][2], turbines=[pages[0][0]])
            )
            if pages
            else None
        )
    except BaseException:
        session.lease.release()
        raise

    async def tables() -> AsyncGenerator[pa.Table, None]:
        for number, (turbine, page_lo, page_hi) in enumerate(pages):
            long = first if number == 0 else None
            if long is None:
                long = await session.query(
                    queries.aggregates_sql(names, page_lo, page_hi, turbines=[turbine])
                )
            if long.num_rows:
                yield await run_in_threadpool(_wide, long, names, schema)

    return stream_pages(
        tables(),
        session.lease,
        chosen=chosen,
        schema=schema,
        name="windpipe_aggregates",
        start=lo,
        end=hi,
    )
