"""``GET /fingerprints``: what each (turbine, UTC day) of the source holds, in one request.

A day's fingerprint changes whenever one of its samples is added, removed or changed (triggers on
the source keep it), so a client that recorded the fingerprint it loaded knows which days went
stale: late data, a historian's back-fill, a re-calibrated period.
"""

from datetime import date, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field

from windpipe.api.deps import ReaderDep, SettingsDep
from windpipe.api.params import ERRORS, EndDay, StartDay, Turbines
from windpipe.api.schemas import check_turbines, parse_day, parse_turbines
from windpipe.api.security import KeyDep
from windpipe.catalog import EMPTY_FINGERPRINT
from windpipe.errors import QueryError
from windpipe.source.store import FINGERPRINT_TURBINES_SQL, fingerprints_sql

router = APIRouter(tags=["samples"], responses=ERRORS, dependencies=[KeyDep])

#: The longest span one request may ask for (one row per turbine and day: cheap).
MAX_DAYS = 3660


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


@router.get("/fingerprints", summary="Fingerprint each turbine's UTC days")
async def get_fingerprints(
    reader: ReaderDep,
    settings: SettingsDep,
    start: StartDay,
    end: EndDay,
    turbines: Turbines = None,
) -> list[DayFingerprint]:
    """Every (turbine, day) in ``[start, end)`` that holds or held samples, with its fingerprint.

    A (turbine, day) that is not listed holds no samples (its fingerprint is ``0:0``).
    """
    first, stop = parse_day("start", start), parse_day("end", end)
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
