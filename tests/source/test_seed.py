from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from typer.testing import CliRunner, Result

from windpipe.cli import app
from windpipe.errors import SeedInputError
from windpipe.postgres import ensure_database, make_engine
from windpipe.settings import Settings
from windpipe.source.generator import generate
from windpipe.source.seed import (
    append_minutes,
    default_period,
    parse_frequency,
    seed_source,
)
from windpipe.source.store import ensure_schema as ensure_source_schema

# This module owns 2022 in the session's source database.
START = datetime(2022, 5, 1, tzinfo=UTC)


@pytest.fixture
def year_2022(source_engine: Engine) -> Iterator[Engine]:
    """The source, with whatever a test writes in 2022 removed afterwards."""
    yield source_engine
    with source_engine.begin() as conn:
        conn.execute(
            text(
                """DELETE FROM data WHERE "timestamp" >= '2022-01-01' """
                """AND "timestamp" < '2023-01-01'"""
            )
        )


def _rows(engine: Engine, start: datetime, end: datetime) -> list[tuple]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    'SELECT "timestamp", wind_speed, power, ambient_temperature FROM data '
                    'WHERE "timestamp" >= :s AND "timestamp" < :e ORDER BY "timestamp"'
                ),
                {"s": start, "e": end},
            )
        )


def test_seeding_twice_leaves_one_row_per_timestamp(year_2022: Engine) -> None:
    end = START + timedelta(days=2)
    first = seed_source(year_2022, START, end, seed=11)
    again = seed_source(year_2022, START, end, seed=11)
    assert first.rows_written == again.rows_written == 2 * 1440
    rows = _rows(year_2022, START, end)
    assert len(rows) == 2 * 1440
    assert len({r[0] for r in rows}) == len(rows)


def test_seeded_rows_equal_the_generator(year_2022: Engine) -> None:
    end = START + timedelta(hours=30)  # crosses midnight, ends mid-day
    seed_source(year_2022, START, end, seed=11)
    expected = generate(START, end, seed=11).to_pylist()
    got = _rows(year_2022, START, end)
    assert len(got) == len(expected) == 30 * 60
    for row, exp in zip(got, expected, strict=True):
        assert row[0] == exp["timestamp"]
        assert row[1:] == (exp["wind_speed"], exp["power"], exp["ambient_temperature"])


def test_reseeding_part_of_a_period_replaces_only_that_part(year_2022: Engine) -> None:
    seed_source(year_2022, START, START + timedelta(days=2), seed=11)
    seed_source(year_2022, START + timedelta(days=1), START + timedelta(days=2), seed=12)
    day0 = _rows(year_2022, START, START + timedelta(days=1))
    day1 = _rows(year_2022, START + timedelta(days=1), START + timedelta(days=2))
    assert len(day0) == len(day1) == 1440
    assert day0 == [
        (r["timestamp"], r["wind_speed"], r["power"], r["ambient_temperature"])
        for r in generate(START, START + timedelta(days=1), seed=11).to_pylist()
    ]


def test_one_second_frequency(year_2022: Engine) -> None:
    result = seed_source(year_2022, START, START + timedelta(hours=1), freq="1s", seed=11)
    assert result.rows_written == 3600


def test_gaps_leave_missing_minutes(year_2022: Engine) -> None:
    result = seed_source(year_2022, START, START + timedelta(days=1), seed=11, gap_rate=0.05)
    assert 1300 < result.rows_written < 1420


@pytest.fixture
def private_source(source_url: URL) -> Iterator[Engine]:
    """A source database of its own: appending depends on the newest row of the whole table."""
    ensure_database(source_url, "windpipe_append_test")
    engine = make_engine(source_url.set(database="windpipe_append_test"))
    ensure_source_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE data"))
    yield engine
    engine.dispose()


def test_append_minutes_catches_up_without_touching_existing_rows(private_source: Engine) -> None:
    base = datetime(2022, 12, 31, 23, 50, tzinfo=UTC)
    assert append_minutes(private_source, until=base, seed=42) == 1  # empty: the current minute
    seed_source(private_source, base, base + timedelta(minutes=10), seed=42)
    before = _rows(private_source, base, base + timedelta(minutes=10))
    added = append_minutes(private_source, until=base + timedelta(minutes=14, seconds=30), seed=42)
    assert added == 5  # 00:00 .. 00:04 of the next day, across midnight
    rows = _rows(private_source, base, base + timedelta(hours=1))
    assert rows[:10] == before
    assert [r[0] for r in rows] == [base + timedelta(minutes=i) for i in range(15)]
    expected = generate(base, base + timedelta(minutes=15), seed=42).to_pylist()
    assert [r[1] for r in rows] == [e["wind_speed"] for e in expected]
    assert append_minutes(private_source, until=base + timedelta(minutes=14), seed=42) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"freq": "2min"}, "unknown frequency '2min'; accepted: 1s, 10s"),
        ({"end": START}, "is not after start"),
        ({"start": START.replace(tzinfo=None)}, "timezone-aware"),
    ],
)
def test_bad_seed_input_is_refused(source_engine: Engine, kwargs: dict, message: str) -> None:
    args = {"start": START, "end": START + timedelta(days=1)} | kwargs
    with pytest.raises(SeedInputError, match=message.replace("(", r"\(")):
        seed_source(source_engine, args.pop("start"), args.pop("end"), **args)


def test_default_period_is_ten_days_to_the_current_minute() -> None:
    now = datetime(2026, 3, 5, 14, 37, 12, tzinfo=UTC)
    start, end = default_period(now)
    assert start == datetime(2026, 2, 23, tzinfo=UTC)
    assert end == datetime(2026, 3, 5, 14, 38, tzinfo=UTC)
    assert parse_frequency("1s") == 1 and parse_frequency("1min") == 60


def _invoke_with_fresh_settings(args: list[str]) -> Result:
    """Run the CLI in-process with settings read from the environment as it is now."""
    from windpipe.settings import get_settings

    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()


def test_cli_seed_states_the_period_held(
    year_2022: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINDPIPE_DATA_DIR", str(settings.data_dir))
    result = _invoke_with_fresh_settings(["seed", "--start", "2022-05-01", "--days", "1"])
    assert result.exit_code == 0, result.output
    held = "seeded 1,440 rows of 1 turbine(s) for [2022-05-01 00:00, 2022-05-02 00:00) UTC at 1min"
    assert held in result.output
    assert "source holds" in result.output and "rows from" in result.output


def test_cli_seed_warns_when_the_period_reaches_into_the_future(
    private_source: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = private_source.url.render_as_string(hide_password=False)
    monkeypatch.setenv("WINDPIPE_SOURCE_DB_URL", url)
    result = _invoke_with_fresh_settings(["seed", "--start", "2099-01-01", "--days", "1"])
    assert result.exit_code == 0, result.output
    assert "the period ends 2099-01-02 00:00 UTC, in the future" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["seed", "--start", "2022-02-30"],
            "--start '2022-02-30' is not a valid date (day is out of range for month)",
        ),
        (["seed", "--freq", "3min"], "unknown frequency '3min'"),
    ],
)
def test_cli_seed_bad_input_is_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
