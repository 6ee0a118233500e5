"""The asset checks pass on good data, report source gaps, and fail on tampered data."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import AssetCheckSeverity, materialize
from sqlalchemy import Engine, text

from tests.conftest import SEED
from tests.orchestration.conftest import run_checks
from windpipe.catalog import windows_of_day
from windpipe.orchestration.defs.assets import aggregates_10min
from windpipe.orchestration.quality import (
    describe_windows,
    duplicate_rows,
    inconsistency,
)
from windpipe.source.seed import seed_source

GAP_DAY = date(2024, 2, 20)  # outside the session's seeded periods; removed afterwards


def _utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def gap_day(seeded_source: Engine, etl_target: Engine) -> Iterator[date]:
    """A source day missing 03:10-03:40 entirely and holding one sample in 05:00-05:10."""
    day = GAP_DAY
    seed_source(seeded_source, _utc(day, 0), _utc(day + timedelta(1), 0), seed=SEED)
    with seeded_source.begin() as conn:
        conn.execute(
            text('DELETE FROM data WHERE "timestamp" >= :a AND "timestamp" < :b'),
            {"a": _utc(day, 3, 10), "b": _utc(day, 3, 40)},
        )
        conn.execute(
            text('DELETE FROM data WHERE "timestamp" > :a AND "timestamp" < :b'),
            {"a": _utc(day, 5, 0), "b": _utc(day, 5, 10)},
        )
    yield day
    with seeded_source.begin() as conn:
        conn.execute(
            text('DELETE FROM data WHERE "timestamp" >= :a AND "timestamp" < :b'),
            {"a": _utc(day, 0), "b": _utc(day + timedelta(1), 0)},
        )
    with etl_target.begin() as conn:
        conn.execute(
            text('DELETE FROM data WHERE "timestamp" >= :a AND "timestamp" < :b'),
            {"a": datetime(2024, 2, 20), "b": datetime(2024, 2, 21)},
        )


def test_checks_pass_on_clean_days(resources: dict, seeded_source: Engine) -> None:
    assert materialize([aggregates_10min], partition_key="2024-03-02", resources=resources).success
    checks = run_checks(resources, "2024-03-02")
    assert {name: e.passed for name, e in checks.items()} == {
        "windows_complete": True,
        "aggregates_consistent": True,
        "no_duplicate_rows": True,
        "live_edge_fresh": True,
        "finite_samples": True,
        "source_unchanged": True,
    }
    assert checks["windows_complete"].metadata["complete_days"].value == 1
    assert checks["aggregates_consistent"].metadata["windows_checked"].value == 144 * 2
    assert checks["no_duplicate_rows"].metadata["rows_checked"].value == 144 * 8


def test_source_gaps_are_reported_as_a_warning_not_hidden(resources: dict, gap_day: date) -> None:
    key = gap_day.isoformat()
    assert materialize([aggregates_10min], partition_key=key, resources=resources).success
    checks = run_checks(resources, key)
    windows = checks["windows_complete"]
    assert not windows.passed
    assert windows.severity == AssetCheckSeverity.WARN
    assert "source gaps" in (windows.description or "")
    assert windows.metadata["mismatches"].value == 0
    assert windows.metadata["days_with_source_gaps"].value == 1
    findings = {r.data["signal"]: r.data for r in windows.metadata["findings"].value.records}
    assert findings["wind_speed_mean"]["windows"] == "141"  # 3 windows without any sample
    assert findings["wind_speed_std"]["windows"] == "140"  # and one with a single sample
    assert findings["wind_speed_mean"]["windows_without_samples"] == "03:10-03:40"
    assert findings["power_std"]["windows_without_samples"] == "03:10-03:40, 05:00"
    assert checks["aggregates_consistent"].passed
    assert checks["no_duplicate_rows"].passed


def test_checks_fail_on_tampered_rows_and_pass_once_reloaded(
    resources: dict, gap_day: date, etl_target: Engine
) -> None:
    key = gap_day.isoformat()
    assert materialize([aggregates_10min], partition_key=key, resources=resources).success
    noon, one = datetime(2024, 2, 20, 12), datetime(2024, 2, 20, 13)
    with etl_target.begin() as conn:
        # A window lost by the target, and a min raised above its max.
        conn.execute(
            text(
                "DELETE FROM data WHERE timestamp = :t AND signal_id = "
                "(SELECT id FROM signal WHERE name = 'wind_speed_mean')"
            ),
            {"t": noon},
        )
        conn.execute(
            text(
                "UPDATE data SET value = value + 100 WHERE timestamp = :t AND signal_id = "
                "(SELECT id FROM signal WHERE name = 'power_min')"
            ),
            {"t": one},
        )
    checks = run_checks(resources, key)
    windows = checks["windows_complete"]
    assert not windows.passed and windows.severity == AssetCheckSeverity.ERROR
    assert windows.metadata["mismatches"].value == 1
    assert "wind_speed_mean on 2024-02-20: 140 windows, source has 141" in windows.description
    consistent = checks["aggregates_consistent"]
    assert not consistent.passed
    assert consistent.metadata["violations"].value == 1
    (example,) = consistent.metadata["examples"].value.records
    assert example.data["variable"] == "power"
    assert example.data["window"] == "2024-02-20 13:00"
    assert example.data["problem"] in ("min > max", "mean < min")
    assert checks["no_duplicate_rows"].passed

    # Reloading the day repairs it: the checks are back to the source-gap warning only.
    assert materialize([aggregates_10min], partition_key=key, resources=resources).success
    checks = run_checks(resources, key)
    assert checks["windows_complete"].severity == AssetCheckSeverity.WARN
    assert checks["windows_complete"].metadata["mismatches"].value == 0
    assert checks["aggregates_consistent"].passed


def test_duplicates_are_found(etl_target: Engine, resources: dict) -> None:
    assert materialize([aggregates_10min], partition_key="2024-03-03", resources=resources).success
    day = date(2024, 3, 3)
    # The unique constraint forbids duplicates, so drop it inside a transaction rolled back.
    with etl_target.connect() as conn, conn.begin() as tx:
        total, found = duplicate_rows(conn, day, day)
        assert (total, found) == (144 * 8, [])
        conn.execute(text("ALTER TABLE data DROP CONSTRAINT uq_data_signal_id_timestamp"))
        conn.execute(
            text(
                "INSERT INTO data (timestamp, signal_id, value) SELECT timestamp, signal_id, "
                "value FROM data WHERE timestamp = :t"
            ),
            {"t": datetime(2024, 3, 3, 7, 30)},
        )
        total, found = duplicate_rows(conn, day, day)
        assert total == 144 * 8 + 8
        assert {(d.timestamp, d.rows) for d in found} == {(datetime(2024, 3, 3, 7, 30), 2)}
        assert len(found) == 8
        tx.rollback()


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"mean": 5.0, "min": 4.0, "max": 6.0, "std": 0.5}, None),
        ({"mean": 5.0, "min": 5.0, "max": 5.0, "std": 0.0}, None),
        ({"mean": 0.1 + 0.2, "min": 0.3, "max": 0.3}, None),  # last-bit rounding tolerated
        ({"mean": 5.0, "min": 5.5, "max": 6.0}, "mean < min"),
        ({"mean": 7.0, "min": 4.0, "max": 6.0}, "mean > max"),
        ({"mean": 5.0, "min": 7.0, "max": 6.0}, "min > max"),
        ({"mean": 5.0, "std": -0.1}, "std < 0"),
        ({"mean": float("nan"), "min": 1.0}, "NaN value"),
        ({"count": 0.0}, "count is not a positive integer"),
        ({"mean": 5.0, "min": None, "max": 6.0}, None),
    ],
)
def test_inconsistency_rules(values: dict, problem: str | None) -> None:
    assert inconsistency(datetime(2024, 3, 1, 10, 20), values) == problem


def test_misaligned_window_is_an_inconsistency() -> None:
    assert inconsistency(datetime(2024, 3, 1, 10, 25), {"mean": 1.0}) == (
        "window start not on a 10-minute boundary"
    )


def test_describe_windows() -> None:
    day = windows_of_day(date(2024, 3, 1))
    assert len(day) == 144
    assert describe_windows([day[1], day[2], day[3], day[30]]) == "00:10-00:40, 05:00"
    assert describe_windows(day[::2], limit=2) == "00:00, 00:20, ... 70 more"
    assert describe_windows(day) == "00:00-24:00"  # a day without any sample
    assert describe_windows(day[-2:]) == "23:40-24:00"
