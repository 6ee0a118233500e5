"""Materializing the aggregates asset in-process writes exactly what SQL on the source computes."""

from datetime import date, timedelta

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from sqlalchemy import Engine, text

from tests.orchestration.conftest import defs
from windpipe.orchestration.defs.assets import aggregates_10min
from windpipe.orchestration.defs.checks import asset_checks
from windpipe.orchestration.defs.sensors import RANGE_END_TAG, RANGE_START_TAG

SIGNALS = [f"{v}_{a}" for v in ("wind_speed", "power") for a in ("mean", "min", "max", "std")]


def source_aggregates(source: Engine, first: date, last: date) -> dict[tuple[str, object], float]:
    """An independent computation of the aggregates, in SQL on the source database."""
    parts = []
    for v in ("wind_speed", "power"):
        for agg, fn in (("mean", "avg"), ("min", "min"), ("max", "max"), ("std", "stddev_samp")):
            parts.append(
                f"SELECT '{v}_{agg}' AS signal, w, {fn}({v}) AS value FROM binned "  # noqa: S608
                f"GROUP BY w HAVING {fn}({v}) IS NOT NULL"
            )
    query = (
        "WITH binned AS (SELECT date_bin('10 minutes', \"timestamp\" AT TIME ZONE 'UTC', "  # noqa: S608
        "TIMESTAMP '2000-01-01') AS w, wind_speed, power FROM data "
        'WHERE "timestamp" >= :lo AND "timestamp" < :hi) ' + " UNION ALL ".join(parts)
    )
    with source.connect() as conn:
        rows = conn.execute(
            text(query),
            {"lo": f"{first}T00:00:00+00:00", "hi": f"{last + timedelta(1)}T00:00:00+00:00"},
        )
        return {(s, w): float(value) for s, w, value in rows}


def target_aggregates(target: Engine, first: date, last: date) -> dict[tuple[str, object], float]:
    """What the target holds for the configured signals in the days."""
    with target.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.name, d.\"timestamp\" AT TIME ZONE 'UTC', d.value "
                "FROM data d JOIN signal s "
                'ON s.id = d.signal_id WHERE s.name = ANY(:names) AND d."timestamp" >= :lo '
                'AND d."timestamp" < :hi'
            ),
            {"names": SIGNALS, "lo": first, "hi": last + timedelta(1)},
        )
        return {(s, w): float(value) for s, w, value in rows}


def assert_same(expected: dict, actual: dict) -> None:
    assert expected.keys() == actual.keys()
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_one_partition_writes_exact_aggregates(
    resources: dict, seeded_source: Engine, etl_target: Engine, instance: DagsterInstance
) -> None:
    result = materialize(
        [aggregates_10min], partition_key="2024-03-01", resources=resources, instance=instance
    )
    assert result.success
    day = date(2024, 3, 1)
    expected = source_aggregates(seeded_source, day, day)
    assert len(expected) == 144 * 8
    assert_same(expected, target_aggregates(etl_target, day, day))

    (event,) = result.asset_materializations_for_node("aggregates_10min")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["rows_read"] == 1440
    assert meta["windows"] == 144
    assert meta["rows_written"] == 144 * 8
    assert meta["coverage_pct"] == 100.0
    assert meta["dagster/row_count"] == 144 * 8
    assert meta["duration_s"] > 0
    preview = event.metadata["preview"].value
    assert len(preview.records) == 24  # one row per hour
    assert preview.records[0].data["window"] == "00:00"
    assert "wind_speed" in meta["chart"] and "power" in meta["chart"]
    assert meta["dashboard"].endswith("/ui/turbine/WTG01?start=2024-03-01&end=2024-03-02")


def test_a_range_is_one_run_with_metadata_per_partition(
    resources: dict, seeded_source: Engine, etl_target: Engine, instance: DagsterInstance
) -> None:
    first, last = date(2024, 3, 1), date(2024, 3, 5)
    job = defs.resolve_job_def("windpipe_etl")
    result = job.execute_in_process(
        instance=instance,
        resources=resources,
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
    )
    assert result.success
    assert_same(
        source_aggregates(seeded_source, first, last), target_aggregates(etl_target, first, last)
    )
    # One materialization per partition, each with its own day's figures.
    events = result.asset_materializations_for_node("aggregates_10min")
    assert sorted(e.partition for e in events) == [
        (first + timedelta(i)).isoformat() for i in range(5)
    ]
    assert all(e.metadata["rows_read"].value == 1440 for e in events)
    assert instance.get_materialized_partitions(AssetKey(["aggregates_10min", "WTG01"])) == {
        (first + timedelta(i)).isoformat() for i in range(5)
    }
    # The job carries the three checks, evaluated once over the whole range.
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {key.name for c in asset_checks for key in c.check_keys}
    assert all(e.passed for e in checks.values()), checks
    assert checks["windows_complete"].metadata["complete_days"].value == 5


def test_rerun_of_a_day_with_gaps_is_idempotent(
    resources: dict, seeded_source: Engine, etl_target: Engine, instance: DagsterInstance
) -> None:
    day = date(2024, 3, 10)  # ~5 % of the samples missing
    for _ in range(2):
        result = materialize(
            [aggregates_10min],
            partition_key=day.isoformat(),
            resources=resources,
            instance=instance,
        )
        assert result.success
        (event,) = result.asset_materializations_for_node("aggregates_10min")
        assert 1300 < event.metadata["rows_read"].value < 1440
        assert 90.0 < event.metadata["coverage_pct"].value < 100.0
    assert_same(source_aggregates(seeded_source, day, day), target_aggregates(etl_target, day, day))
