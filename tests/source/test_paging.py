"""Keyset pages of `/data`'s query: the rows of one query, each page an ordered index scan."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.conftest import FARM_DAYS
from windpipe.source.store import select_range_sql

START = datetime(FARM_DAYS[0].year, FARM_DAYS[0].month, FARM_DAYS[0].day, tzinfo=UTC)
VARIABLES = ["wind_speed", "power"]
LISTS = [None, ["WTG01", "WTG03"], ["WTG03", "WTG01", "WTG02"], ["WTG02"], ["WTG02", "WTG09"]]


def _rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def _paged(engine: Engine, turbines: list[str] | None, start: datetime, end: datetime, size: int):  # type: ignore[no-untyped-def]
    """Every page, as the route reads them: the next one after the last row of a full page."""
    rows: list[tuple[Any, ...]] = []
    after = None
    while True:
        sql = select_range_sql(VARIABLES, start, end, turbines=turbines, limit=size, after=after)
        page = _rows(engine, sql)
        rows += page
        if len(page) < size:
            return rows
        after = (page[-1][0], page[-1][1])


@pytest.mark.parametrize("turbines", LISTS)
@pytest.mark.parametrize("size", [1, 997, 1440])
def test_pages_hold_the_rows_of_one_query(
    farm_db: tuple[Engine, Engine], turbines: list[str] | None, size: int
) -> None:
    source = farm_db[0]
    start, end = START + timedelta(hours=20), START + timedelta(days=1, hours=4)
    if size == 1:  # a page a row: a short range keeps it quick
        end = start + timedelta(minutes=7)
    whole = _rows(source, select_range_sql(VARIABLES, start, end, turbines=turbines))
    assert whole, "the farm holds samples in the range"
    assert _paged(source, turbines, start, end, size) == whole


def test_a_page_after_a_turbine_not_asked_for_holds_only_those_asked(
    farm_db: tuple[Engine, Engine],
) -> None:
    sql = select_range_sql(
        VARIABLES,
        START,
        START + timedelta(days=2),
        turbines=["WTG01", "WTG03"],
        limit=10,
        after=("WTG02", START),
    )
    assert {row[0] for row in _rows(farm_db[0], sql)} == {"WTG03"}


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


@pytest.mark.parametrize("turbines", LISTS)
def test_a_later_page_is_an_ordered_index_scan(
    farm_db: tuple[Engine, Engine], turbines: list[str] | None
) -> None:
    source = farm_db[0]
    with source.connect() as conn:
        conn.execute(text("ANALYZE data"))
    after = ("WTG02", START + timedelta(hours=30))
    for page_after in (None, after):
        sql = select_range_sql(
            VARIABLES,
            START,
            START + timedelta(days=2),
            turbines=turbines,
            limit=1000,
            after=page_after,
        )
        with source.connect() as conn:
            plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
        nodes = _nodes(plan[0]["Plan"])
        shown = json.dumps([n["Node Type"] for n in nodes])
        assert not [n for n in nodes if n["Node Type"] == "Sort"], shown
        assert not [n for n in nodes if n["Node Type"] in ("Seq Scan", "Bitmap Heap Scan")], shown
        scans = [n for n in nodes if n.get("Relation Name") == "data"]
        assert scans and all(n["Node Type"] == "Index Scan" for n in scans), shown
