"""``windpipe events import``'s work on a real PostgreSQL: idempotent upserts, renamed columns,
time zones, and refusals that name the file, line and column and change nothing."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import new_database, utc
from windpipe.source.events import EventColumns, count_events, import_events, read_events
from windpipe.source.importer import ImportFileError
from windpipe.source.store import ensure_schema

CSV = """turbine,start,end,code,message
WTG01,2024-06-01T10:00:00Z,2024-06-01T10:30:00Z,101,Service
WTG01,2024-06-01T12:00:00Z,,205,Grid fault
WTG02,2024-06-01T09:00:00+02:00,2024-06-01T09:05:00+02:00,205,
"""


@pytest.fixture(scope="module")
def source(source_url: URL) -> Iterator[Engine]:
    with new_database(source_url, "windpipe_events_import") as engine:
        ensure_schema(engine)
        yield engine


@pytest.fixture
def empty(source: Engine) -> Engine:
    with source.begin() as conn:
        conn.execute(text("TRUNCATE turbine_event"))
    return source


def held(engine: Engine) -> list[tuple[str, datetime, datetime | None, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text('SELECT turbine, start, "end", code, message FROM turbine_event ORDER BY 1, 2, 4')
        ).all()
    return [
        (t, s.astimezone(UTC), None if e is None else e.astimezone(UTC), c, m)
        for t, s, e, c, m in rows
    ]


def write(tmp_path: Path, body: str, name: str = "events.csv") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_import_then_again_changes_nothing_then_an_end_closes_an_ongoing_event(
    empty: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path, CSV)
    report = import_events(path, engine=empty)
    assert (report.read, report.events, report.new, report.changed, report.ongoing) == (
        3,
        3,
        3,
        0,
        1,
    )
    expected = [
        ("WTG01", utc(2024, 6, 1, 10), utc(2024, 6, 1, 10, 30), "101", "Service"),
        ("WTG01", utc(2024, 6, 1, 12), None, "205", "Grid fault"),
        ("WTG02", utc(2024, 6, 1, 7), utc(2024, 6, 1, 7, 5), "205", None),
    ]
    assert held(empty) == expected

    again = import_events(path, engine=empty)
    assert (again.new, again.changed, again.unchanged) == (0, 0, 3)
    assert held(empty) == expected

    closed = write(
        tmp_path,
        "turbine,start,end,code,message\n"
        "WTG01,2024-06-01T12:00:00Z,2024-06-01T13:15:00Z,205,Grid fault\n",
        "closed.csv",
    )
    report = import_events(closed, engine=empty)
    assert (report.new, report.changed, report.ongoing) == (0, 1, 0)
    assert held(empty)[1] == (
        "WTG01",
        utc(2024, 6, 1, 12),
        utc(2024, 6, 1, 13, 15),
        "205",
        "Grid fault",
    )


def test_renamed_columns_a_delimiter_and_naive_times_in_a_zone(
    empty: Engine, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "Unit;From;To;Status;Text;Other\n"
        "WTG07;2024-01-15 08:00;2024-01-15 09:30;12;Icing;x\n"  # winter: UTC+1
        "WTG07;2024-07-15 08:00;;13;Yaw;y\n",  # summer: UTC+2
    )
    columns = EventColumns(turbine="Unit", start="From", end="To", code="Status", message="Text")
    report = import_events(
        path, engine=empty, columns=columns, timezone="Europe/Paris", delimiter=";"
    )
    assert (report.events, report.ongoing) == (2, 1)
    assert held(empty) == [
        ("WTG07", utc(2024, 1, 15, 7), utc(2024, 1, 15, 8, 30), "12", "Icing"),
        ("WTG07", utc(2024, 7, 15, 6), None, "13", "Yaw"),
    ]


def test_parquet_with_typed_times_and_integer_codes(empty: Engine, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pl.DataFrame(
        {
            "turbine": ["WTG01", "WTG01"],
            "start": [utc(2024, 6, 1, 1), utc(2024, 6, 1, 2)],
            "end": [utc(2024, 6, 1, 1, 20), None],
            "code": [7, 8],
        },
        schema_overrides={"end": pl.Datetime("us", "UTC")},
    ).write_parquet(path)
    report = import_events(path, engine=empty)
    assert (report.events, report.ongoing, report.new) == (2, 1, 2)
    assert [row[3] for row in held(empty)] == ["7", "8"]


def test_a_repeated_event_in_a_file_keeps_the_last(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "turbine,start,end,code,message\n"
        "WTG01,2024-06-01T10:00:00Z,2024-06-01T10:10:00Z,1,first\n"
        "WTG01,2024-06-01T10:00:00Z,2024-06-01T10:20:00Z,1,second\n",
    )
    rows, report = read_events(path)
    assert (report.read, report.events, report.duplicates) == (2, 1, 1)
    assert rows["message"].to_list() == ["second"]


@pytest.mark.parametrize(
    ("body", "options", "message"),
    [
        (
            "turbine,start,end,code\nWTG01,2024-06-01T10:00:00Z,,1\nWTG01,yesterday,,1\n",
            {},
            "line 3, column 'start': unparseable time 'yesterday'",
        ),
        (
            "turbine,start,end,code\nWTG01,2024-06-01T10:00:00Z,2024-06-01T09:00:00Z,1\n",
            {},
            "line 2, column 'end': end not after start '2024-06-01T09:00:00Z'",
        ),
        (
            "turbine,start,end,code\nWTG01,2024-06-01T10:00:00Z,,1\nWTG 01,2024-06-01T11:00Z,,1\n",
            {},
            "line 3, column 'turbine': bad turbine id (letters, digits, _ . - only) 'WTG 01'",
        ),
        (
            "turbine,begin,end,code\nWTG01,2024-06-01T10:00:00Z,,1\n",
            {},
            "line 1: column start not in the file; it has: turbine, begin, end, code",
        ),
        (
            "turbine,start,end,code\nWTG01,2024-06-01 10:00,,1\n",
            {},
            "line 2, column 'start': '2024-06-01 10:00' has no UTC offset; give --timezone",
        ),
        (
            "turbine,start,end,code\nWTG01,2024-03-31 02:30,,1\n",
            {"timezone": "Europe/Paris"},
            "line 2, column 'start': nonexistent local time in Europe/Paris '2024-03-31 02:30'",
        ),
        (
            "turbine,start,end,code\nWTG01,2024-06-01T10:00:00Z,,\n",
            {},
            "line 2, column 'code': missing code",
        ),
    ],
    ids=["bad-time", "end-before-start", "turbine-id", "missing-column", "naive", "dst", "code"],
)
def test_a_refused_file_names_file_line_and_column_and_changes_nothing(
    empty: Engine, tmp_path: Path, body: str, options: dict[str, str], message: str
) -> None:
    import_events(write(tmp_path, CSV, "before.csv"), engine=empty)
    before = held(empty)
    path = write(tmp_path, body, "bad.csv")
    with pytest.raises(ImportFileError) as caught:
        import_events(path, engine=empty, **options)  # type: ignore[arg-type]
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert held(empty) == before
    assert count_events(empty) == 3


def test_the_table_refuses_an_end_before_the_start_itself(empty: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError, match="ck_turbine_event_end"), empty.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO turbine_event (turbine, start, "end", code) '
                "VALUES ('WTG01', '2024-06-01T10:00Z', '2024-06-01T10:00Z', '1')"
            )
        )


def test_times_to_the_minute_another_layout_and_a_column_of_two_layouts(tmp_path: Path) -> None:
    minutes = write(
        tmp_path, "turbine,start,end,code\nWTG01,2024-06-01T10:00Z,2024-06-01T12:30+02:00,1\n"
    )
    rows, _ = read_events(minutes)
    assert rows.select("start", "end").row(0) == (utc(2024, 6, 1, 10), utc(2024, 6, 1, 10, 30))
    french = write(tmp_path, "turbine,start,end,code\nWTG01,01/06/2024 10:00,,1\n", "fr.csv")
    rows, _ = read_events(french, timezone="UTC", time_format="%d/%m/%Y %H:%M")
    assert rows["start"].to_list() == [utc(2024, 6, 1, 10)]
    mixed = write(
        tmp_path,
        "turbine,start,end,code\nWTG01,2024-06-01T10:00:00Z,,1\nWTG01,2024-06-02 10:00,,1\n",
        "mixed.csv",
    )
    with pytest.raises(ImportFileError) as caught:
        read_events(mixed, timezone="UTC")
    assert (
        "line 3, column 'start': unparseable time '2024-06-02 10:00' (the column's times are "
        "read as '%+', the layout of its first; one layout a column: ISO 8601 with or without "
        "an offset, or give --time-format)"
    ) in str(caught.value)
