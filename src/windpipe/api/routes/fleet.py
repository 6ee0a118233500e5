"""The fleet: `GET /turbines` (each turbine and what the source holds of it), `GET /coverage`."""

from typing import Any

from fastapi import APIRouter

from windpipe.api.deps import ReaderDep, SettingsDep
from windpipe.api.params import ERRORS
from windpipe.api.schemas import CoverageBody, TurbineInfo
from windpipe.api.security import KeyDep
from windpipe.settings import Settings
from windpipe.source.store import TURBINES_SQL

router = APIRouter(tags=["fleet"], responses=ERRORS, dependencies=[KeyDep])


@router.get("/turbines", summary="List the turbines and their samples' span")
async def get_turbines(reader: ReaderDep, settings: SettingsDep) -> list[TurbineInfo]:
    """Every turbine, configured or found in the source: metadata, first and last sample, rows."""
    lease = await reader.lease()
    try:
        held = {row["turbine"]: row for row in (await lease.query(TURBINES_SQL)).to_pylist()}
    finally:
        lease.release()
    return _turbines(settings, held)


def _turbines(settings: Settings, held: dict[str, dict[str, Any]]) -> list[TurbineInfo]:
    answer = []
    for turbine in settings.fleet_of(list(held)):
        row = held.pop(turbine.id, {})
        answer.append(
            TurbineInfo(
                **vars(turbine),
                configured=settings.turbines_declared,
                first=row.get("first"),
                last=row.get("last"),
                rows=int(row.get("rows") or 0),
            )
        )
    for turbine_id, row in held.items():  # in the data, not (or no longer) configured
        answer.append(
            TurbineInfo(
                id=turbine_id,
                configured=False,
                first=row["first"],
                last=row["last"],
                rows=int(row["rows"]),
            )
        )
    return answer


@router.get("/coverage", summary="Span and row count of the source")
async def get_coverage(reader: ReaderDep) -> CoverageBody:
    """First and last timestamp in the source (null when empty), and its row count.

    The count is exact up to 200,000 rows and the planner's estimate above (``rows_exact``), so
    this answers in milliseconds whatever the table's size.
    """
    first, last, rows, exact = await reader.coverage()
    return CoverageBody(first=first, last=last, rows=rows, rows_exact=exact)
