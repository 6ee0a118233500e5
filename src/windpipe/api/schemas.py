"""Request parsing and response models of the connector API."""

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field

from windpipe import catalog
from windpipe.errors import QueryError


class VariableInfo(BaseModel):
    """A variable the API can serve."""

    name: str
    unit: str
    description: str


class Health(BaseModel):
    """Liveness of the API, its database and the source table's schema contract."""

    status: str = Field(description="ok, or unavailable (then the answer is a 503).")
    database: str = Field(description="ok, or unavailable: the source database does not answer.")
    contract: str = Field(
        description="ok, broken (the source table's columns are not what windpipe reads), or "
        "unknown (the database does not answer)."
    )
    reason: str | None = Field(
        default=None,
        description="Why it is unavailable: each column breaking the contract, the type found "
        "and the type expected, and the statement that fixes it.",
    )


class ErrorBody(BaseModel):
    """Every 4xx/5xx body."""

    detail: str


class TurbineInfo(catalog.Turbine):
    """A turbine: its configured metadata (``catalog.Turbine``) and what the source holds of it."""

    #: As the source holds it: a turbine only in the data may have an id the configuration refuses.
    id: str
    configured: bool = Field(description="Declared in the configuration (else only in the data).")
    first: datetime | None = Field(description="Earliest sample (UTC), null when none.")
    last: datetime | None = Field(description="Latest sample (UTC), null when none.")
    rows: int


class CoverageBody(BaseModel):
    """What the source holds: first and last timestamp (null when empty) and how many rows."""

    first: datetime | None
    last: datetime | None
    rows: int
    rows_exact: bool = Field(
        description="false when `rows` is the planner's estimate (large tables: counting every "
        "row would take seconds)"
    )


#: Longest stretch of a request value an error message repeats.
SHOWN_CHARS = 64


def shown(value: object) -> str:
    """``repr`` of a request value for an error message, cut to SHOWN_CHARS characters."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > SHOWN_CHARS:
        return repr(text[:SHOWN_CHARS]) + f" (cut, {len(text):,} characters)"
    return repr(text)


_EXAMPLES = "e.g. 2026-01-01, 2026-01-01T10:00:00Z or 2026-01-01T10:00:00+02:00 (send + as %2B)"
# YYYY-MM-DD, optionally followed by a time and an offset: the forms the examples show. Python's
# own parser also takes 20260101 or 2026-W01-4, which people mean as something else.
_TIME = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,6})?)?"
_OFFSET_DIGITS = r"\d{2}(?::?\d{2})?"
_ISO = re.compile(rf"\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]{_TIME}(?:Z|z|[+-]{_OFFSET_DIGITS})?)?")
#: The forms ``start`` and ``end`` accept, for the OpenAPI document (a raw '+' decoded to a space
#: is accepted too); the parser checks the calendar and the range.
MOMENT_PATTERN = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d([.,]\d{1,6})?)?([Zz]|[+ -]\d{2}(:?\d{2})?)?)?$"
)
# A '+' sent unencoded in a query string arrives as a space: "10:00:00 02:00" meant "+02:00".
_DECODED_PLUS = re.compile(rf"(T{_TIME}) ({_OFFSET_DIGITS})$")
#: The form a whole UTC day is asked in.
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
_DAY = re.compile(DAY_PATTERN)


def parse_moment(name: str, value: str) -> datetime:
    """An ISO 8601 date or datetime as an aware UTC datetime; no offset means UTC."""
    text = _DECODED_PLUS.sub(r"\1+\2", value.strip())
    if not _ISO.fullmatch(text):
        raise QueryError(f"{name}={shown(value)} is not an ISO 8601 date or datetime; {_EXAMPLES}")
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
            f"{name}={shown(value)} is not a valid date or time ({exc}); {_EXAMPLES}"
        ) from None
    except OverflowError:
        raise QueryError(
            f"{name}={shown(value)} falls outside 0001-01-01..9999-12-31 once converted to UTC"
        ) from None


def parse_day(name: str, value: str) -> date:
    """A UTC day asked as ``YYYY-MM-DD``."""
    if not _DAY.fullmatch(value.strip()):
        raise QueryError(f"{name}={shown(value)} is not a date; use YYYY-MM-DD (a UTC day)")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise QueryError(f"{name}={shown(value)} is not a valid date ({exc})") from None


def listed(values: list[str] | None) -> list[str]:
    """Items of repeated and/or comma-separated parameters, in request order, deduplicated."""
    names: list[str] = []
    for value in values or []:
        for part in value.split(","):
            name = part.strip()
            if name and name not in names:
                names.append(name)
    return names


def parse_variables(values: list[str] | None, accepted: Sequence[str] | None = None) -> list[str]:
    """Variables asked for (all of ``accepted``, the configured ones, when none is named)."""
    accepted = list(catalog.VARIABLES) if accepted is None else list(accepted)
    if not values:
        return accepted
    names = listed(values)
    for name in names:
        if name not in accepted:
            raise QueryError(f"unknown variable {shown(name)}; accepted: {', '.join(accepted)}")
    if not names:
        raise QueryError(f"variables is empty; accepted: {', '.join(accepted)}")
    return names


def parse_turbines(values: list[str] | None) -> list[str] | None:
    """Turbines asked for (repeated and/or comma-separated), None for all (parameter left out).

    A value given but holding no id (``turbines=``, ``turbines=A,,B``) is refused, as the OpenAPI
    pattern says, rather than read as "every turbine".
    """
    for value in values or []:
        if not re.fullmatch(f"{catalog.TURBINE_ID}(,{catalog.TURBINE_ID})*", value.strip()):
            raise QueryError(
                f"turbines={shown(value)} is not a list of turbine ids; give ids such as "
                "WTG01,WTG02 (letters, digits, _ . -), or leave turbines out for every turbine"
            )
    return listed(values) or None


def check_turbines(names: Sequence[str], known: Sequence[str]) -> None:
    """Refuse turbines that are neither configured nor in the source, listing the known ones."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise QueryError(
            f"unknown turbine{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(shown(n) for n in unknown[:5])}; "
            f"known: {', '.join(list(known)[:50]) or 'none yet'}"
        )


def span_text(span: timedelta) -> str:
    """A duration as people write it: ``2,527 days``, ``366 days and 1 second``."""

    def count(n: int, unit: str) -> str:
        return f"{n:,} {unit}{'' if n == 1 else 's'}"

    seconds = int(span.total_seconds())  # sub-second rests do not change what a reader decides
    days, rest = divmod(seconds, 86_400)
    parts = [
        count(n, unit)
        for n, unit in ((days, "day"), (rest // 3600, "hour"), (rest % 3600 // 60, "minute"))
        if n
    ]
    if rest % 60 or not parts:
        parts.append(count(rest % 60, "second"))
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def parse_range(start: str, end: str, max_days: int) -> tuple[datetime, datetime]:
    """``start`` and ``end`` as UTC datetimes, once the range they make is checked."""
    lo, hi = parse_moment("start", start), parse_moment("end", end)
    check_range(lo, hi, max_days)
    return lo, hi


def check_range(start: datetime, end: datetime, max_days: int) -> None:
    """Reject empty, inverted and over-long ranges."""
    if end <= start:
        days = all(m.astimezone(UTC).time() == time() for m in (start, end))  # as they were given
        lo, hi = (m.astimezone(UTC).date() if days else m for m in (start, end))
        raise QueryError(
            f"end ({hi.isoformat()}) must be after start ({lo.isoformat()}); "
            "the range is [start, end)"
        )
    if end - start > timedelta(days=max_days):
        raise QueryError(
            f"the range [start, end) spans {span_text(end - start)}, more than the maximum of "
            f"{max_days} days (WINDPIPE_API_MAX_RANGE_DAYS); split the request"
        )
