"""Request parsing and response models of the connector API."""

import re
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel

from windpipe import catalog
from windpipe.errors import QueryError


class VariableInfo(BaseModel):
    """A variable the API can serve."""

    name: str
    unit: str
    description: str


class Health(BaseModel):
    """Liveness of the API and its database."""

    status: str
    database: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx body."""

    detail: str


_EXAMPLES = "e.g. 2026-01-01, 2026-01-01T10:00:00Z or 2026-01-01T10:00:00+02:00 (send + as %2B)"
# YYYY-MM-DD, optionally followed by a time and an offset: the forms the examples show. Python's
# own parser also takes 20260101 or 2026-W01-4, which people mean as something else.
_TIME = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,6})?)?"
_OFFSET_DIGITS = r"\d{2}(?::?\d{2})?"
_ISO = re.compile(rf"\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]{_TIME}(?:Z|z|[+-]{_OFFSET_DIGITS})?)?")
# A '+' sent unencoded in a query string arrives as a space: "10:00:00 02:00" meant "+02:00".
_DECODED_PLUS = re.compile(rf"(T{_TIME}) ({_OFFSET_DIGITS})$")


def parse_moment(name: str, value: str) -> datetime:
    """An ISO 8601 date or datetime as an aware UTC datetime; no offset means UTC."""
    text = _DECODED_PLUS.sub(r"\1+\2", value.strip())
    if not _ISO.fullmatch(text):
        raise QueryError(f"{name}={value!r} is not an ISO 8601 date or datetime; {_EXAMPLES}")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return catalog.utc_midnight(day)
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except ValueError as exc:
        raise QueryError(
            f"{name}={value!r} is not a valid date or time ({exc}); {_EXAMPLES}"
        ) from None
    except OverflowError:
        raise QueryError(
            f"{name}={value!r} falls outside 0001-01-01..9999-12-31 once converted to UTC"
        ) from None


def parse_variables(values: list[str] | None) -> list[str]:
    """Variables from repeated and/or comma-separated parameters, in request order, deduplicated."""
    accepted = list(catalog.VARIABLES)
    if not values:
        return accepted
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if not name:
                continue
            if name not in accepted:
                raise QueryError(f"unknown variable {name!r}; accepted: {', '.join(accepted)}")
            if name not in names:
                names.append(name)
    if not names:
        raise QueryError(f"variables is empty; accepted: {', '.join(accepted)}")
    return names


def check_range(start: datetime, end: datetime, max_days: int) -> None:
    """Reject empty, inverted and over-long ranges."""
    if end <= start:
        raise QueryError(
            f"end ({end.isoformat()}) must be after start ({start.isoformat()}); "
            "the range is [start, end)"
        )
    if end - start > timedelta(days=max_days):
        raise QueryError(
            f"the range [start, end) spans {end - start}, more than the maximum of "
            f"{max_days} days (WINDPIPE_API_MAX_RANGE_DAYS); split the request"
        )
