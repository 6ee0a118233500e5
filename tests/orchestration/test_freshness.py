"""Dagster's own freshness on each turbine's asset, beside windpipe's live_edge_fresh check: what
each judges, on real materializations and Dagster's own evaluator (the freshness daemon's)."""

import asyncio
from datetime import UTC, datetime, timedelta

from dagster import DagsterInstance, Definitions, materialize
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.definitions.freshness_evaluator import TimeWindowFreshnessPolicyEvaluator
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time

from windpipe.orchestration.defs.assets import build_aggregates, turbine_keys
from windpipe.orchestration.defs.resources import EtlResource

LAG = 30


def _state(instance: DagsterInstance, defs: Definitions, turbine: str) -> FreshnessState:
    """The state Dagster's freshness daemon would record for the turbine's asset now."""
    node = defs.resolve_asset_graph().get(turbine_keys([turbine])[turbine])
    evaluator = TimeWindowFreshnessPolicyEvaluator()
    context = LoadingContextForTest(instance)
    return asyncio.run(evaluator.evaluate_freshness(context=context, node=node))


def test_every_turbine_has_the_settings_lag_as_its_freshness_policy() -> None:
    aggregates = build_aggregates(["WTG01", "WTG02"], freshness_lag_minutes=45)
    for spec in aggregates.specs:
        policy = spec.freshness_policy
        assert policy is not None
        assert policy.fail_window.to_timedelta() == timedelta(minutes=45)  # type: ignore[attr-defined]
    default = build_aggregates(["WTG01"])  # the setting's default
    (spec,) = default.specs
    assert spec.freshness_policy.fail_window.to_timedelta() == timedelta(minutes=30)  # type: ignore[union-attr]


def test_dagster_judges_when_the_turbine_ran_not_how_old_its_windows_are(
    resources: dict[str, EtlResource], instance: DagsterInstance
) -> None:
    """A load of 2024's data is 'fresh' to Dagster for LAG minutes after its run: it measures the
    runs (the 10-minute refresh stopping), not the data; live_edge_fresh measures the windows."""
    aggregates = build_aggregates(["WTG01"], freshness_lag_minutes=LAG)
    defs = Definitions(assets=[aggregates], resources=resources)
    assert _state(instance, defs, "WTG01") == FreshnessState.UNKNOWN  # never materialized
    ran = materialize(
        [aggregates], partition_key="2024-03-02", resources=resources, instance=instance
    )
    assert ran.success
    assert _state(instance, defs, "WTG01") == FreshnessState.PASS
    with freeze_time(datetime.now(UTC) + timedelta(minutes=LAG + 1)):
        assert _state(instance, defs, "WTG01") == FreshnessState.FAIL
