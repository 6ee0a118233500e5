"""``GET /events``: the turbines' events (stops, alarms, maintenance) overlapping a time range."""

from collections.abc import AsyncGenerator

import pyarrow as pa
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from windpipe.api.deps import ReaderDep, SettingsDep
from windpipe.api.formats import negotiate
from windpipe.api.params import ERRORS, AcceptHeader, End, FormatParam, Start, Turbines, streamed
from windpipe.api.schemas import check_turbines, parse_range, parse_turbines
from windpipe.api.security import KeyDep
from windpipe.api.streaming import stream_pages
from windpipe.source.events import EVENT_SCHEMA, EVENT_TURBINES_SQL, select_events_sql
from windpipe.source.store import TURBINE_IDS_SQL

router = APIRouter(tags=["events"], responses=ERRORS, dependencies=[KeyDep])

_MOMENT = {"type": "string", "format": "date-time"}
_EVENT = {
    "type": "object",
    "properties": {
        "turbine": {"type": "string"},
        "start": _MOMENT,
        "end": {**_MOMENT, "type": ["string", "null"], "description": "null: ongoing"},
        "code": {"type": "string"},
        "message": {"type": ["string", "null"]},
    },
    "required": ["turbine", "start", "end", "code", "message"],
}


@router.get(
    "/events",
    summary="List the events overlapping a time range",
    responses=streamed("The events, in the format asked for.", _EVENT),
    response_class=StreamingResponse,
)
async def get_events(
    reader: ReaderDep,
    settings: SettingsDep,
    start: Start,
    end: End,
    turbines: Turbines = None,
    format: FormatParam = None,
    accept: AcceptHeader = None,
) -> StreamingResponse:
    """Events with ``start < end`` of the range and ``end > start`` of the range (an ongoing
    event, whose ``end`` is null, overlaps every range after its start), by turbine, start and
    code: ``turbine``, ``start``, ``end``, ``code``, ``message``.

    Times are UTC; the formats are those of ``/data`` (JSON array, CSV with a header line, Arrow
    IPC stream). The range is validated as ``/data``'s is.
    """
    lo, hi = parse_range(start, end, settings.api_max_range_days)
    chosen = format or negotiate(accept)
    wanted = parse_turbines(turbines)
    lease = await reader.lease()  # 503 + Retry-After when no connection frees up in time
    try:
        if wanted is not None:
            fleet = [t.id for t in settings.fleet]
            if any(t not in fleet for t in wanted):  # only then is the source asked
                held = (await lease.query(TURBINE_IDS_SQL)).column("turbine").to_pylist()
                noted = (await lease.query(EVENT_TURBINES_SQL)).column("turbine").to_pylist()
                check_turbines(wanted, list(dict.fromkeys([*fleet, *held, *noted])))
        # One query: a range's events are few (thousands), unlike its samples.
        found = await lease.query(select_events_sql(lo, hi, turbines=wanted))
    except BaseException:
        lease.release()
        raise

    async def pages() -> AsyncGenerator[pa.Table, None]:
        yield found

    return stream_pages(
        pages(), lease, chosen=chosen, schema=EVENT_SCHEMA, name="events", start=lo, end=hi
    )
