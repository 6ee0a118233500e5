"""The daily figures and flags: real materializations, Dagster's automation conditions evaluated
against the instance, and their checks on good and bad rows."""

import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    BackfillPolicy,
    BetaWarning,
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    SensorResult,
    build_sensor_context,
    define_asset_job,
    evaluate_automation_conditions,
    materialize,
)
from sqlalchemy import Engine, text

from tests.orchestration.conftest import defs
from windpipe.catalog import EventChange
from windpipe.orchestration.defs.assets import FLEET, aggregates_10min
from windpipe.orchestration.defs.events import build_event_changes, changed_pairs, event_keys
from windpipe.orchestration.defs.figures import (
    FIGURES_CONDITION,
    FIGURES_RUN_DAYS,
    build_figure_checks,
    build_figures,
    figure_keys,
)
from windpipe.orchestration.defs.partitions import daily_partitions
from windpipe.source.events import upsert_events
from windpipe.warehouse.flags import replace_flags
from windpipe.warehouse.reads import kpi_losses, kpi_rows
from windpipe.warehouse.store import replace_kpis

DAY = "2024-03-02"
KPIS, FLAGS = build_figures(FLEET)
KPI_KEYS, FLAG_KEYS = figure_keys(FLEET)
CHECKS = build_figure_checks(KPI_KEYS, FLAG_KEYS)


def test_the_figures_are_wired_as_the_issue_asks() -> None:
    for prefix in ("kpis_daily", "flags_daily"):
        key = AssetKey([prefix, "WTG01"])
        asset = defs.resolve_assets_def(key)
        assert asset.partitions_def == daily_partitions
        assert asset.automation_conditions_by_key[key] == FIGURES_CONDITION
        assert asset.backfill_policy == BackfillPolicy.multi_run(FIGURES_RUN_DAYS)
        assert AssetKey(["aggregates_10min", "WTG01"]) in asset.asset_deps[key]
        # the events of the day and, for the figures' reference curve, the 30 days before it
        mapping = asset.get_partition_mapping(AssetKey(["turbine_events", "WTG01"]))
        history = -30 if prefix == "kpis_daily" else 0
        assert getattr(mapping, "start_offset", 0) == history, mapping
        assert asset.descriptions_by_key[key]
    sensors = {s.name: s for s in defs.sensors or []}  # type: ignore[union-attr]
    assert sensors["figures_automation"].default_status == DefaultSensorStatus.RUNNING
    assert sensors["figures_automation"].run_tags["dagster/priority"] == "-1"  # type: ignore[attr-defined]
    # Its runs (the implicit asset job's) run in one process, as windpipe_etl's.
    assert defs.executor is not None and defs.executor.name == "in_process"


def requested(instance: DagsterInstance, cursor: object) -> tuple[dict[AssetKey, set[str]], object]:
    """One tick of Dagster's automation over windpipe's definitions: what it requests."""
    with warnings.catch_warnings():  # the test helper's own use of a beta parameter
        warnings.simplefilter("ignore", BetaWarning)
        result = evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            cursor=cursor,  # type: ignore[arg-type]
            evaluation_time=datetime.now(UTC),
        )
    asked = {}
    for key in [*KPI_KEYS.values(), *FLAG_KEYS.values()]:
        parts = result.get_requested_partitions(key)
        if parts:
            asked[key] = set(parts)
    return asked, result.cursor


@pytest.fixture(scope="module")
def materialized(resources: dict) -> Iterator[tuple[DagsterInstance, dict, object]]:
    """An instance where DAY's aggregates were loaded and the automation asked for its figures,
    which were then materialized: what each tick requested along the way."""
    with DagsterInstance.ephemeral() as instance:
        seen: dict = {}
        seen["first"], cursor = requested(instance, None)
        assert materialize(
            [aggregates_10min], partition_key=DAY, resources=resources, instance=instance
        ).success
        seen["after_aggregates"], cursor = requested(instance, cursor)
        result = materialize(
            [KPIS, FLAGS], partition_key=DAY, resources=resources, instance=instance
        )
        assert result.success
        seen["after_figures"], cursor = requested(instance, cursor)
        # A late correction: the change sensor reloads the day's aggregates.
        assert materialize(
            [aggregates_10min], partition_key=DAY, resources=resources, instance=instance
        ).success
        seen["after_correction"], cursor = requested(instance, cursor)
        yield instance, seen, cursor


def test_loaded_aggregates_request_their_days_figures(materialized: tuple) -> None:
    _, seen, _ = materialized
    assert seen["first"] == {}  # nothing loaded: nothing to compute
    every = {*KPI_KEYS.values(), *FLAG_KEYS.values()}
    assert seen["after_aggregates"] == {key: {DAY} for key in every}
    assert seen["after_figures"] == {}  # handled: not asked again
    assert seen["after_correction"] == {key: {DAY} for key in every}


def test_the_figures_are_stored_for_the_partition_only(materialized: tuple) -> None:
    # The asset computed DAY with [availability] reference_days (30) of history before it;
    # replace_kpis refuses rows outside the range it replaces, so success means DAY alone.
    instance, _, _ = materialized
    key = KPI_KEYS["WTG01"]
    assert instance.get_materialized_partitions(key) == {DAY}
    event = instance.get_latest_materialization_event(key)
    assert event is not None and event.asset_materialization is not None
    meta = event.asset_materialization.metadata
    assert meta["reference_days"].value == 30
    assert 0.0 <= meta["availability_time"].value <= 1.0  # type: ignore[operator]


def run_checks(resources: dict, instance: DagsterInstance) -> dict[str, AssetCheckEvaluation]:
    """Only the figures' checks for DAY, in a job of their own; evaluations by check name
    (the first turbine's)."""
    job = define_asset_job(
        "figures", selection=AssetSelection.assets(KPIS, FLAGS), partitions_def=daily_partitions
    )
    resolved = Definitions(
        assets=[KPIS, FLAGS], asset_checks=CHECKS, jobs=[job], resources=resources
    ).resolve_job_def("figures")
    only_checks = resolved.get_subset(
        asset_selection=set(),
        asset_check_selection={key for c in CHECKS for key in c.check_keys},
    )
    result = only_checks.execute_in_process(partition_key=DAY, instance=instance)
    return {
        e.check_name: e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[-1] == "WTG01"
    }


def test_checks_pass_on_computed_figures_and_fail_on_bad_rows(
    materialized: tuple, resources: dict, etl_target: Engine
) -> None:
    instance, _, _ = materialized
    day = date.fromisoformat(DAY)
    with etl_target.connect() as conn:
        good = kpi_rows(conn, day, day, FLEET)
        losses = kpi_losses(conn, day, day, FLEET)
    checks = run_checks(resources, instance)
    for name in ("availability_in_range", "energy_within_rating", "lost_production_nonnegative"):
        assert checks[name].passed, (name, checks[name].description)

    bad = good.with_columns(
        pl.when(pl.col("turbine") == "WTG01")
        .then(pl.lit(1.5))
        .otherwise(pl.col("availability_time"))
        .alias("availability_time"),
        pl.when(pl.col("turbine") == "WTG01")
        .then(pl.lit(-3.0))
        .otherwise(pl.col("lost_production_kwh"))
        .alias("lost_production_kwh"),
        pl.lit(100.0).alias("rated_power_kw"),
    )
    try:
        replace_kpis(etl_target, day, day, bad, losses, turbines=FLEET)
        checks = run_checks(resources, instance)
        assert not checks["availability_in_range"].passed
        assert "availability_time=1.5" in (checks["availability_in_range"].description or "")
        assert not checks["lost_production_nonnegative"].passed
        # 100 kW x 24 h x 1.05 = 2,520 kWh: the seeded day produces more.
        assert not checks["energy_within_rating"].passed
        assert checks["energy_within_rating"].severity == AssetCheckSeverity.ERROR
    finally:
        replace_kpis(etl_target, day, day, good, losses, turbines=FLEET)


def test_unknown_event_codes_warn_naming_them(
    materialized: tuple, resources: dict, seeded_source: Engine
) -> None:
    instance, _, _ = materialized
    assert run_checks(resources, instance)["event_codes_known"].passed
    event = pl.DataFrame(
        {
            "turbine": ["WTG01"],
            "start": [datetime(2024, 3, 2, 6, tzinfo=UTC)],
            "end": [datetime(2024, 3, 2, 7, tzinfo=UTC)],
            "code": ["ZZ-TEST-42"],
            "message": ["test"],
        }
    )
    upsert_events(seeded_source, event)
    try:
        check = run_checks(resources, instance)["event_codes_known"]
        assert not check.passed and check.severity == AssetCheckSeverity.WARN
        assert "ZZ-TEST-42" in (check.description or "")
    finally:
        with seeded_source.begin() as conn:
            conn.execute(text("DELETE FROM turbine_event WHERE code = 'ZZ-TEST-42'"))


def test_flag_counts_warn_per_day_and_flag(
    materialized: tuple, resources: dict, etl_target: Engine
) -> None:
    instance, _, _ = materialized
    day = date.fromisoformat(DAY)
    flags = pl.DataFrame(
        {
            "turbine": ["WTG01", "WTG01"],
            "timestamp": [datetime(2024, 3, 2, 1), datetime(2024, 3, 2, 1, 10)],
            "flag": ["flatline", "flatline"],
            "signal": ["power", "power"],
        },
        schema={
            "turbine": pl.String,
            "timestamp": pl.Datetime("us"),
            "flag": pl.String,
            "signal": pl.String,
        },
    )
    replace_flags(etl_target, flags, turbines=["WTG01"], first=day, last=day)
    check = run_checks(resources, instance)["flag_counts"]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert "flatline 2" in (check.description or "")
    assert check.metadata["flag_flatline"].value == 2
    replace_flags(etl_target, flags.clear(), turbines=["WTG01"], first=day, last=day)
    assert run_checks(resources, instance)["flag_counts"].passed


def test_written_events_request_their_days_figures_again(
    materialized: tuple, resources: dict, seeded_source: Engine
) -> None:
    """The event_changes sensor reports the day an import wrote as the turbine's events updated,
    and Dagster's automation asks for that day's figures and flags again (and nothing else)."""
    instance, _, cursor = materialized
    sensor = build_event_changes(event_keys(FLEET))

    def tick(sensor_cursor: str | None) -> tuple[SensorResult, str]:
        with build_sensor_context(
            instance=instance, resources=resources, cursor=sensor_cursor
        ) as context:
            result = sensor(context)  # type: ignore[operator]
        assert isinstance(result, SensorResult)
        skipped = result.skip_reason.skip_message if result.skip_reason else ""
        return result, skipped or ""

    # The first tick reads the log from its beginning (what this session's source was written so
    # far); the instance is not told, so nothing changes for the automation.
    started, _ = tick(None)
    assert tick(started.cursor)[1].startswith("no events written")

    event = pl.DataFrame(
        {
            "turbine": ["WTG01"],
            "start": [datetime(2024, 3, 2, 6, tzinfo=UTC)],
            "end": [datetime(2024, 3, 2, 7, tzinfo=UTC)],
            "code": ["201"],
            "message": ["written after the figures"],
        }
    )
    upsert_events(seeded_source, event)
    try:
        written, _ = tick(started.cursor)
        assert [(e.asset_key, e.partition) for e in written.asset_events] == [  # type: ignore[union-attr]
            (AssetKey(["turbine_events", "WTG01"]), DAY)
        ]
        quiet, cursor = requested(instance, cursor)
        assert quiet == {}  # not reported yet: nothing asked
        for materialization in written.asset_events:
            instance.report_runless_asset_event(materialization)  # type: ignore[arg-type]
        asked, _ = requested(instance, cursor)
        assert asked == {KPI_KEYS["WTG01"]: {DAY}, FLAG_KEYS["WTG01"]: {DAY}}
        assert tick(written.cursor)[1].startswith("no events written")
    finally:
        with seeded_source.begin() as conn:
            conn.execute(
                text("DELETE FROM turbine_event WHERE message = 'written after the figures'")
            )


def test_events_reported_while_the_figures_run_request_them_again(resources: dict) -> None:
    """An events update reported after the automation asked for a day's figures, whose run then
    finishes (it read the events before the update), leaves that day asked again: the run's own
    materialization does not count as having handled the update (Dagster's eager() would)."""
    events = AssetKey(["turbine_events", "WTG01"])
    every = {*KPI_KEYS.values(), *FLAG_KEYS.values()}
    with DagsterInstance.ephemeral() as instance:
        _, cursor = requested(instance, None)
        assert materialize(
            [aggregates_10min], partition_key=DAY, resources=resources, instance=instance
        ).success
        asked, cursor = requested(instance, cursor)
        assert asked == {key: {DAY} for key in every}
        # The requested run is under way; an import lands and the event sensor reports it; then
        # the run finishes.
        instance.report_runless_asset_event(AssetMaterialization(events, partition=DAY))
        assert materialize(
            [KPIS, FLAGS], partition_key=DAY, resources=resources, instance=instance
        ).success
        asked, cursor = requested(instance, cursor)
        assert asked == {KPI_KEYS["WTG01"]: {DAY}, FLAG_KEYS["WTG01"]: {DAY}}
        # That second run finishes with nothing new: the day is left alone.
        assert materialize(
            [KPIS, FLAGS], partition_key=DAY, resources=resources, instance=instance
        ).success
        assert requested(instance, cursor)[0] == {}


def test_a_days_events_reach_the_figures_of_the_days_whose_curve_they_enter(
    resources: dict,
) -> None:
    """kpis_daily depends on the events of its day and the reference_days (30) before it: an
    events update asks again the figures of that day and of the 30 after it (those whose
    aggregates are loaded), the flags of that day alone."""
    events, aggregates = (
        AssetKey(["turbine_events", "WTG01"]),
        AssetKey(["aggregates_10min", "WTG01"]),
    )
    day = date.fromisoformat(DAY)
    later = [(day + timedelta(days=n)).isoformat() for n in (1, 30, 31)]
    with DagsterInstance.ephemeral() as instance:
        _, cursor = requested(instance, None)
        for partition in [DAY, *later]:
            instance.report_runless_asset_event(
                AssetMaterialization(aggregates, partition=partition)
            )
        asked, cursor = requested(instance, cursor)
        assert asked[KPI_KEYS["WTG01"]] == {DAY, *later}
        instance.report_runless_asset_event(AssetMaterialization(events, partition=DAY))
        asked, _ = requested(instance, cursor)
    assert asked == {KPI_KEYS["WTG01"]: {DAY, *later[:2]}, FLAG_KEYS["WTG01"]: {DAY}}


def test_changes_touch_the_days_of_their_turbines_within_the_partitions() -> None:
    change = EventChange(1, "WTG02", datetime(2024, 3, 1, 23, tzinfo=UTC), None)
    everyone = EventChange(2, None, None, None)
    other = EventChange(3, "WTG77", None, None)
    first, last = date(2024, 3, 1), date(2024, 3, 3)
    assert changed_pairs([change, everyone, other], ["WTG01", "WTG02"], first, last) == [
        {("WTG02", date(2024, 3, d)) for d in (1, 2, 3)},
        {(t, date(2024, 3, d)) for t in ("WTG01", "WTG02") for d in (1, 2, 3)},
        set(),
    ]
