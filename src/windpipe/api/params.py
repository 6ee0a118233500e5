"""What the routes share: their error answers, and the query parameters, each declared once."""

from typing import Annotated, Any

from fastapi import Header, Query

from windpipe.api.formats import DataFormat
from windpipe.api.schemas import DAY_PATTERN, MOMENT_PATTERN, ErrorBody
from windpipe.catalog import TURBINE_ID

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Keys are configured and none was sent."},
    403: {"model": ErrorBody, "description": "The key sent is not accepted."},
    422: {"model": ErrorBody, "description": "A parameter is invalid; `detail` says which."},
    503: {
        "model": ErrorBody,
        "description": "Busy (every connection or request slot in use) or the source database "
        "does not answer: retry after `Retry-After` seconds. Or the source table breaks its "
        "schema contract (no `Retry-After`): `detail` names the column, the type found and "
        "expected, and the statement that fixes it.",
        "headers": RETRY_AFTER,
    },
}
#: Turbine ids, comma-separated (as the configuration accepts them).
TURBINES_PATTERN = f"^{TURBINE_ID}(,{TURBINE_ID})*$"


def streamed(description: str, record: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The 200 of a streamed route: ``record`` objects in JSON, CSV or Arrow."""
    return {
        200: {
            "description": description,
            "content": {
                "application/json": {"schema": {"type": "array", "items": record}},
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.arrow.stream": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        }
    }


def _bound(description: str, pattern: str, *examples: str) -> Any:
    """A required ``start`` or ``end``: text the route parses (its message says what is wrong)."""
    return Query(
        description=description, json_schema_extra={"pattern": pattern}, examples=list(examples)
    )


#: ``start=``: the range's first moment, inclusive.
Start = Annotated[
    str,
    _bound(
        "Inclusive start, ISO 8601 date or datetime (UTC if no offset).",
        MOMENT_PATTERN,
        "2026-01-01",
        "2026-01-01T10:00:00Z",
    ),
]
#: ``end=``: the range's end, exclusive.
End = Annotated[
    str,
    _bound(
        "Exclusive end, ISO 8601 date or datetime (UTC if no offset).",
        MOMENT_PATTERN,
        "2026-01-02",
        "2026-01-01T14:00:00+02:00",
    ),
]
#: ``start=`` in whole UTC days: the first day, inclusive.
StartDay = Annotated[
    str, _bound("First UTC day, inclusive (YYYY-MM-DD).", DAY_PATTERN, "2026-01-01")
]
#: ``end=`` in whole UTC days: the day after the last one.
EndDay = Annotated[
    str,
    _bound(
        "Day after the last one: the range is [start, end) in whole UTC days.",
        DAY_PATTERN,
        "2026-01-31",
    ),
]
#: ``turbines=``: repeated and/or comma-separated ids; omitted means every turbine.
Turbines = Annotated[
    list[str] | None,
    Query(
        description="Comma-separated and/or repeated turbine ids (as /turbines lists them); "
        "omitted means every turbine.",
        json_schema_extra={"items": {"type": "string", "pattern": TURBINES_PATTERN}},
    ),
]
#: ``format=``: wins over the Accept header.
FormatParam = Annotated[
    DataFormat | None, Query(description="json, csv or arrow; overrides the Accept header.")
]
#: The Accept header, negotiated when ``format`` is not given.
AcceptHeader = Annotated[str | None, Header(include_in_schema=False)]
