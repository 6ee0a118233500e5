"""The source's schema contract: a drifted table is refused by name, never served wrong or
reported as a database that does not answer; fixed, it is served again with no restart."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.conftest import serve
from windpipe.api import create_app
from windpipe.api import pool as pool_module
from windpipe.errors import SourceSchemaError
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings, SignalConfig
from windpipe.source.contract import breaches, check, check_source, describe
from windpipe.source.store import ensure_schema

HOUR = {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z"}
DATA_ROUTES = (("/data", HOUR), ("/coverage", {}), ("/turbines", {}))
TYPES = {
    "timestamp": "timestamp with time zone",
    "wind_speed": "double precision",
    "power": "double precision",
    "ambient_temperature": "double precision",
    "turbine": "text",
}


@pytest.fixture
def source(empty_database: Engine) -> Engine:
    """A source database of this test's own, with an hour's samples of WTG01 (10:00-10:59Z)."""
    ensure_schema(empty_database)
    with empty_database.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO data ("timestamp", wind_speed, power, ambient_temperature, turbine) '
                "SELECT t, 7.25, 1234.56, 11.5, 'WTG01' FROM generate_series("
                "'2024-05-01T10:00:00Z'::timestamptz, '2024-05-01T10:59:00Z', '1 minute') t"
            )
        )
    return empty_database


def _alter(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


@contextmanager
def start(settings: Settings, source: Engine) -> Iterator[httpx.Client]:
    """A real API over ``source`` (started after the test changed the table), and its client."""
    app = create_app(settings, source_conninfo=libpq_conninfo(source.url))
    with serve(app) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def _refused(client: httpx.Client, *named: str) -> None:
    """/health and every data route answer 503 with a reason naming each of ``named``."""
    health = client.get("/health")
    assert health.status_code == 503, health.text
    body = health.json()
    assert body["status"] == "unavailable" and body["database"] == "ok"
    assert body["contract"] == "broken"
    for path, params in DATA_ROUTES:
        response = client.get(path, params=params)
        assert response.status_code == 503, (path, response.text)
        detail = response.json()["detail"]
        assert detail == body["reason"]
        assert "does not answer" not in detail
    for word in named:
        assert word in body["reason"], (word, body["reason"])


def test_a_renamed_signal_column_is_named_and_its_fix_serves_again_without_restart(
    settings: Settings, source: Engine
) -> None:
    _alter(source, "ALTER TABLE data RENAME COLUMN power TO active_power")
    with start(settings, source) as client:
        _refused(client, "column power is missing", "expected double precision")
        assert client.get("/variables").status_code == 200  # no source read: still served

        _alter(source, "ALTER TABLE data RENAME COLUMN active_power TO power")
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok", "contract": "ok"}
        data = client.get("/data", params=HOUR | {"variables": "power"})
        assert data.status_code == 200 and len(data.json()) == 60
        assert data.json()[0]["power"] == 1234.56
        assert client.get("/coverage").json()["rows"] == 60


def test_a_column_renamed_while_the_api_runs_is_a_schema_problem_not_a_dead_database(
    settings: Settings, source: Engine
) -> None:
    with start(settings, source) as client:
        assert client.get("/data", params=HOUR).status_code == 200  # the contract held: cached
        _alter(source, "ALTER TABLE data RENAME COLUMN power TO active_power")
        # Whether the kept answer is still fresh (the query is refused: SQLSTATE 42703) or not
        # (the lease is refused), the answer names the column.
        data = client.get("/data", params=HOUR)
        assert data.status_code == 503
        assert "column power is missing" in data.json()["detail"]
        assert "does not answer" not in data.json()["detail"]
        assert "Retry-After" not in data.headers
        assert client.get("/health").status_code == 503


def test_an_integer_power_column_is_refused_as_already_rounded(
    settings: Settings, source: Engine
) -> None:
    _alter(source, "ALTER TABLE data ALTER COLUMN power TYPE integer")
    with start(settings, source) as client:
        _refused(
            client,
            "column power is integer, expected double precision",
            "rounded",
            'ALTER TABLE data ALTER COLUMN "power" TYPE double precision',
        )
        _alter(source, "ALTER TABLE data ALTER COLUMN power TYPE double precision")
        assert client.get("/health").status_code == 200
        assert client.get("/data", params=HOUR).json()[0]["power"] == 1235.0  # what is left


def test_a_text_power_column_is_refused(settings: Settings, source: Engine) -> None:
    _alter(source, "ALTER TABLE data ALTER COLUMN power TYPE text")
    with start(settings, source) as client:
        _refused(
            client,
            "column power is text, expected double precision",
            'USING "power"::double precision',
        )
        csv = client.get("/data", params=HOUR | {"format": "csv"})
        assert csv.status_code == 503  # not a 200 cut after its header


def test_a_naive_timestamp_column_is_refused_even_where_it_would_be_read_shifted(
    settings: Settings, source: Engine
) -> None:
    database = source.url.database
    _alter(
        source,
        f"ALTER DATABASE \"{database}\" SET timezone = 'Europe/Berlin'",
        'ALTER TABLE data ALTER COLUMN "timestamp" TYPE timestamp without time zone '
        "USING \"timestamp\" AT TIME ZONE 'Europe/Berlin'",
    )
    with start(settings, source) as client:
        _refused(
            client,
            "column timestamp is timestamp without time zone",
            "expected timestamp with time zone",
            "timestamptz",
        )


def test_a_real_signal_column_and_a_varchar_turbine_keep_the_contract(
    settings: Settings, source: Engine
) -> None:
    _alter(
        source,
        "ALTER TABLE data ALTER COLUMN ambient_temperature TYPE real",
        "ALTER TABLE data ALTER COLUMN turbine TYPE varchar(64)",
    )
    with start(settings, source) as client:
        assert client.get("/health").status_code == 200
        row = client.get("/data", params=HOUR).json()[0]
        assert row["ambient_temperature"] == 11.5 and row["turbine"] == "WTG01"


def test_the_problems_are_logged_at_start_up(
    settings: Settings, source: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    _alter(source, "ALTER TABLE data ALTER COLUMN power TYPE bigint")
    with caplog.at_level(logging.ERROR, logger="windpipe"), start(settings, source) as client:
        assert client.get("/health").status_code == 503
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("column power is bigint, expected double precision" in m for m in errors), errors


def test_a_signal_read_from_another_column_is_checked_there(settings: Settings) -> None:
    signals = dict(settings.signals)
    signals["power"] = SignalConfig(unit="kW", column="p_kw")
    variables = settings.model_copy(update={"signals": signals}).variables.values()
    found = breaches(TYPES, variables)
    assert [b.column for b in found] == ["p_kw (signal power)"]
    assert "[signals.power] column" in str(found[0])
    check({**TYPES, "p_kw": "real"}, variables)  # passes


def test_the_contract_names_each_breach_with_found_expected_and_fix(settings: Settings) -> None:
    variables = settings.variables.values()
    assert breaches(TYPES, variables) == []
    assert breaches({**TYPES, "timestamp": "timestamp(3) with time zone"}, variables) == []
    drifted = {
        **TYPES,
        "wind_speed": "numeric(6,2)",
        "turbine": "integer",
        "timestamp": "date",
    }
    found = breaches(drifted, variables)
    assert [(b.column, b.found, b.expected) for b in found] == [
        ("timestamp", "date", "timestamp with time zone"),
        ("turbine", "integer", "text (or varchar)"),
        ("wind_speed", "numeric(6,2)", "double precision"),
    ]
    assert found[2].fix == 'ALTER TABLE data ALTER COLUMN "wind_speed" TYPE double precision'
    with pytest.raises(SourceSchemaError, match="breaks windpipe's schema contract") as raised:
        check(drifted, variables)
    assert str(raised.value) == describe(found)
    assert "no `data` table" in describe(breaches({}, variables))


def test_check_source_reads_the_catalog(settings: Settings, source: Engine) -> None:
    assert check_source(source, settings.variables.values()) == []
    _alter(source, "ALTER TABLE data DROP COLUMN wind_speed")
    assert [b.column for b in check_source(source, settings.variables.values())] == ["wind_speed"]


def test_a_query_refused_for_its_schema_names_the_column_not_a_dead_database(
    settings: Settings, source: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "CONTRACT_TTL", 3600.0)  # the start-up check stays fresh
    with start(settings, source) as client:
        assert client.get("/data", params=HOUR).status_code == 200
        _alter(source, "ALTER TABLE data RENAME COLUMN power TO active_power")
        data = client.get("/data", params=HOUR)  # the query is refused: SQLSTATE 42703
        assert data.status_code == 503
        assert "column power is missing" in data.json()["detail"], data.text
        # The refusal asked for a fresh check: the other routes now know it without querying.
        assert "column power is missing" in client.get("/coverage").json()["detail"]


def test_a_role_that_may_not_read_the_table_breaks_the_contract(
    settings: Settings, source: Engine
) -> None:
    role = f"{source.url.database}_noread"
    _alter(source, f'DROP ROLE IF EXISTS "{role}"', f'CREATE ROLE "{role}" LOGIN')
    try:
        app = create_app(settings, source_conninfo=libpq_conninfo(source.url.set(username=role)))
        with serve(app) as live, httpx.Client(base_url=live.url, timeout=30) as client:
            _refused(client, "column power may not be read by the API's role", "GRANT SELECT")
            _alter(source, f'GRANT SELECT ON data TO "{role}"')
            assert client.get("/health").status_code == 200
            assert client.get("/data", params=HOUR).status_code == 200
    finally:
        _alter(source, f'REVOKE ALL ON data FROM "{role}"')
        _alter(source, f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.parametrize(
    ("sqlstate", "refused"),
    [
        ("42703", True),  # undefined column
        ("42P01", True),  # undefined table
        ("42804", True),  # datatype mismatch
        ("42501", True),  # insufficient privilege
        ("22P02", True),  # invalid text representation
        ("08006", False),  # connection failure
        ("57P01", False),  # admin shutdown
        ("57014", False),  # query cancelled (statement_timeout)
        (None, False),
    ],
)
def test_sqlstates_tell_a_refused_query_from_a_database_that_does_not_answer(
    sqlstate: str | None, refused: bool
) -> None:
    error = Exception("boom")
    error.sqlstate = sqlstate  # type: ignore[attr-defined]
    assert pool_module._refused(error) is refused
