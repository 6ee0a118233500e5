"""The API's routes: data, variables, coverage, health."""

import itertools
from typing import Annotated

import pyarrow as pa
from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse

from windpipe import catalog
from windpipe.api.deps import ReaderDep, SettingsDep
from windpipe.api.formats import (
    MEDIA_TYPES,
    DataFormat,
    encode_arrow,
    encode_csv,
    encode_json,
    negotiate,
)
from windpipe.api.reader import CHUNK, TEXT_CHUNK
from windpipe.api.schemas import (
    ErrorBody,
    Health,
    VariableInfo,
    check_range,
    parse_moment,
    parse_variables,
)
from windpipe.catalog import Coverage
from windpipe.errors import SourceUnavailableError

router = APIRouter()
_ERRORS: dict[int | str, dict[str, object]] = {
    422: {"model": ErrorBody, "description": "A parameter is invalid; `detail` says which."},
    503: {"model": ErrorBody, "description": "The source database does not answer."},
}


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    """Send people to the interactive docs."""
    return RedirectResponse("/docs")


@router.get("/data", responses=_ERRORS)
def get_data(
    reader: ReaderDep,
    settings: SettingsDep,
    start: Annotated[
        str, Query(description="Inclusive start, ISO 8601 date or datetime (UTC if no offset).")
    ],
    end: Annotated[
        str, Query(description="Exclusive end, ISO 8601 date or datetime (UTC if no offset).")
    ],
    variables: Annotated[
        list[str] | None,
        Query(description="Comma-separated and/or repeated; omitted means all variables."),
    ] = None,
    format: Annotated[
        DataFormat | None, Query(description="json, csv or arrow; overrides the Accept header.")
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> StreamingResponse:
    """Samples with ``start <= timestamp < end`` in timestamp order, streamed.

    JSON (default) is an array of objects; CSV has a header line; Arrow is an IPC stream
    (`application/vnd.apache.arrow.stream`) whose end-of-stream marker proves completeness.
    """
    lo, hi = parse_moment("start", start), parse_moment("end", end)
    check_range(lo, hi, settings.api_max_range_days)
    names = parse_variables(variables)
    chosen = format or negotiate(accept)

    chunk = CHUNK if chosen is DataFormat.arrow else TEXT_CHUNK
    batches = reader.read_range(names, lo, hi, chunk=chunk)
    # Read the first chunk before answering: a dead database becomes a 503, not a broken 200.
    first = list(itertools.islice(batches, 1))
    stream = itertools.chain(first, batches)
    schema = pa.schema(
        [pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False)]
        + [pa.field(n, pa.float64()) for n in names]
    )
    if chosen is DataFormat.arrow:
        body = encode_arrow(stream, schema)
    elif chosen is DataFormat.csv:
        body = encode_csv(stream, ["timestamp", *names])
    else:
        body = encode_json(stream)
    filename = f"windpipe_{lo:%Y%m%dT%H%M%S}_{hi:%Y%m%dT%H%M%S}.{chosen.value}"
    headers = {"Content-Disposition": f'inline; filename="{filename}"'}
    return StreamingResponse(body, media_type=MEDIA_TYPES[chosen], headers=headers)


@router.get("/variables")
def get_variables() -> list[VariableInfo]:
    """The variables ``/data`` can serve, with units."""
    return [
        VariableInfo(name=v.name, unit=v.unit, description=v.description)
        for v in catalog.VARIABLES.values()
    ]


@router.get("/coverage", responses=_ERRORS)
def get_coverage(reader: ReaderDep) -> Coverage:
    """First and last timestamp in the source (null when empty), and its row count."""
    return reader.coverage()


@router.head("/health", include_in_schema=False)  # load balancers and probes send HEAD
@router.get("/health", responses={503: {"model": Health}})
def get_health(reader: ReaderDep) -> JSONResponse:
    """200 when the source database answers, 503 when it does not."""
    try:
        reader.ping()
    except SourceUnavailableError as exc:
        body = Health(status="unavailable", database=str(exc))
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(Health(status="ok", database="ok").model_dump())
