"""What the data routes (/data, /aggregates) share: error answers and query parameters."""

from typing import Annotated, Any

from fastapi import Header, Query

from windpipe.api.formats import DataFormat
from windpipe.api.schemas import ErrorBody

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
TURBINES_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(,[A-Za-z0-9][A-Za-z0-9_.-]{0,63})*$"

#: ``format=``: wins over the Accept header.
FormatParam = Annotated[
    DataFormat | None, Query(description="json, csv or arrow; overrides the Accept header.")
]
#: The Accept header, negotiated when ``format`` is not given.
AcceptHeader = Annotated[str | None, Header(include_in_schema=False)]
