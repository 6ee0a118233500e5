"""``GET /events``: the turbines' events (stops, alarms, maintenance) overlapping a time range;
``GET /events/changes``: what was written to them since a reader last looked."""

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import pyarrow as pa
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from windpipe.api.deps import ReaderDep, SettingsDep
from windpipe.api.formats import negotiate
from windpipe.api.params import ERRORS, AcceptHeader, End, FormatParam, Start, Turbines, streamed
from windpipe.api.schemas import check_turbines, parse_range, parse_turbines
from windpipe.api.security import KeyDep
from windpipe.api.streaming import stream_pages
from windpipe.source.events import (
    EVENT_CHANGE_HEAD_SQL,
    EVENT_SCHEMA,
    EVENT_TURBINES_SQL,
    event_changes_sql,
    select_events_sql,
)
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


#: The most changes one request lists (a reader asks again from the last ``id`` it got).
MAX_CHANGES = 10_000


class EventChangeBody(BaseModel):
    """One write to the events: the span of one turbine's events it touched, before and after."""

    id: int = Field(description="Increasing: ask for the changes after the last one read.")
    turbine: str | None = Field(description="null: every turbine (the table was emptied).")
    first: datetime | None = Field(description="null: from the beginning.")
    last: datetime | None = Field(
        description="Exclusive; null: to now (an ongoing event was touched)."
    )
    changed_at: datetime


class EventChangesBody(BaseModel):
    """The changes after ``after``, oldest first, and the newest change held."""

    head: int = Field(
        description="The newest change's id (0: none yet): where a new reader starts."
    )
    changes: list[EventChangeBody]


@router.get("/events/changes", summary="List the writes to the events after a given change")
async def get_event_changes(
    reader: ReaderDep,
    after: Annotated[
        int | None,
        Query(ge=0, description="The last change already read; omitted: none listed, only `head`."),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_CHANGES, description="The most changes listed.")
    ] = 1000,
) -> EventChangesBody:
    """Every import, seed, feed round or hand-written statement that wrote ``turbine_event``
    logs one change per turbine (triggers on the source): the span of the events it touched,
    before and after. A reader that remembers the last ``id`` it handled learns, in one cheap
    request, which turbines and days to compute again (Dagster's ``event_changes`` sensor)."""
    lease = await reader.lease()
    try:
        head = int((await lease.query(EVENT_CHANGE_HEAD_SQL)).column("head")[0].as_py() or 0)
        rows = (
            []
            if after is None
            else (await lease.query(event_changes_sql(after, limit))).to_pylist()
        )
    finally:
        lease.release()
    return EventChangesBody(
        head=head,
        changes=[
            EventChangeBody(**{k: row[k] for k in EventChangeBody.model_fields}) for row in rows
        ],
    )
