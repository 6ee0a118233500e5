"""``GET /fingerprints``: what each (turbine, UTC day) of the source holds, in one request.

A day's fingerprint changes whenever one of its samples is added, removed or changed (triggers on
the source keep it), so a client that recorded the fingerprint it loaded knows which days went
stale: late data, a historian's back-fill, a re-calibrated period.
"""

import re
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from windpipe.api.deps import ReaderDep, SettingsDep
from windpipe.api.params import ERRORS, TURBINES_PATTERN
from windpipe.api.schemas import check_turbines, parse_turbines, shown
from windpipe.api.security import KeyDep
from windpipe.catalog import EMPTY_FINGERPRINT
from windpipe.errors import QueryError
from windpipe.source.store import FINGERPRINT_TURBINES_SQL, fingerprints_sql

router = APIRouter()

#: The longest span one request may ask for (one row per turbine and day: cheap).
MAX_DAYS = 3660
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
_DAY = re.compile(DAY_PATTERN)


class DayFingerprint(BaseModel):
    """One turbine's UTC day: its sample count and a fingerprint of every value it holds."""

    turbine: str
    day: date
    samples: int = Field(description="Samples stored for the turbine on that UTC day.")
    fingerprint: str = Field(
        description="`samples:checksum`, where the checksum is the sum of the rows' hashes: "
        "equal for equal content, different after any added, removed or changed sample. "
        f"`{EMPTY_FINGERPRINT}` for a day without samples."
    )


def _parse_day(name: str, value: str) -> date:
    if not _DAY.fullmatch(value.strip()):
        raise QueryError(f"{name}={shown(value)} is not a date; use YYYY-MM-DD (a UTC day)")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise QueryError(f"{name}={shown(value)} is not a valid date ({exc})") from None


@router.get("/fingerprints", responses=ERRORS, dependencies=[KeyDep])
async def get_fingerprints(
    reader: ReaderDep,
    settings: SettingsDep,
    start: Annotated[
        str,
        Query(
            description="First UTC day, inclusive (YYYY-MM-DD).",
            json_schema_extra={"pattern": DAY_PATTERN},
            examples=["2026-01-01"],
        ),
    ],
    end: Annotated[
        str,
        Query(
            description="Day after the last one: the range is [start, end) in whole UTC days.",
            json_schema_extra={"pattern": DAY_PATTERN},
            examples=["2026-01-31"],
        ),
    ],
    turbines: Annotated[
        list[str] | None,
        Query(
            description="Turbine ids, comma-separated or repeated; default: every turbine.",
            json_schema_extra={"pattern": TURBINES_PATTERN},
        ),
    ] = None,
) -> list[DayFingerprint]:
    """Every (turbine, day) in ``[start, end)`` that holds or held samples, with its fingerprint.

    A (turbine, day) that is not listed holds no samples (its fingerprint is ``0:0``).
    """
    first, stop = _parse_day("start", start), _parse_day("end", end)
    if stop <= first:
        raise QueryError(f"end ({stop}) must be after start ({first}); the range is [start, end)")
    if stop - first > timedelta(days=MAX_DAYS):
        raise QueryError(
            f"the range spans {(stop - first).days} days, more than {MAX_DAYS}; split the request"
        )
    asked = parse_turbines(turbines)
    lease = await reader.lease()
    try:
        if asked is not None:
            held = (await lease.query(FINGERPRINT_TURBINES_SQL)).column("turbine").to_pylist()
            known = list(dict.fromkeys([t.id for t in settings.fleet] + held))
            check_turbines(asked, known)
        table = await lease.query(fingerprints_sql(first, stop - timedelta(days=1), asked))
    finally:
        lease.release()
    return [
        DayFingerprint(
            turbine=row["turbine"],
            day=row["day"],
            samples=int(row["samples"]),
            fingerprint=f"{int(row['samples'])}:{row['checksum']}",
        )
        for row in table.to_pylist()
    ]
