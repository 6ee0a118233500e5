"""Dagster's declarative automation beside windpipe's hand-written sensors, in one run.

    uv run python bench/automation.py                 # 10 turbines x 365 days (3,650 partitions)
    uv run python bench/automation.py --days 60       # a quicker look

One embedded PostgreSQL in a temporary directory holds the source (10-minute samples: what is
measured is per (turbine, day), not per sample) and an empty target; ``windpipe api`` serves it on
a free loopback port; Dagster's instance is a SQLite home as under ``windpipe up``. Per mechanism:
the evaluation time of a tick (median of ``--runs``), the runs it requests and their partitions,
and the events it writes. Side by side:

- **catch-up** of a year never loaded: the ``catch_up`` sensor against ``AutomationCondition``
  ``on_missing()`` (which, like ``on_cron``, looks at the latest time partition only, and only at
  partitions that became missing after it was applied), ``on_missing()`` without its
  latest-time-window clause, and ``missing() & ~in_progress()`` (every missing partition, asked
  again each tick while missing and not in a run). What the
  daemon makes of the requested partitions, by Dagster's own ``build_run_requests``: one backfill
  (``emit_backfills``, the default, run by the backfill daemon under the assets'
  ``BackfillPolicy.single_run()``: one run over every partition), or runs;
- **10-minute refresh** of today: the ``today_every_10min`` schedule against ``on_cron``;
- **change detection**: the ``source_changes`` sensor (one ``/fingerprints`` request over the look
  back, one query of ``day_load``) against an observable source asset reporting each (turbine,
  day)'s fingerprint as its data version: the same request, executed as an observation (in a run
  of its own under the daemon), writing one observation event per (turbine, day) each pass;
- **events**: the ``event_changes`` sensor (one ``/events/changes`` request after its cursor) on a
  quiet tick, and on the tick after an import touching every turbine on each day of the look back
  (one materialization of ``turbine_events/<turbine>`` per (turbine, day) reported).

Dagster's cost of a run (2.4-10 s here) and of a run over many partitions (``bench/catchup.py``)
is not repeated: the figures say how many runs each mechanism asks for.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

warnings.simplefilter("ignore")
DAYS_DEFAULT = 365
TODAY = datetime.now(UTC).date()


def _median(runs: int, action: Callable[[], object]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def main() -> None:
    """Seed, serve, evaluate each mechanism ``--runs`` times, print the figures side by side."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=DAYS_DEFAULT)
    parser.add_argument("--turbines", type=int, default=10)
    parser.add_argument("--lookback", type=int, default=30, help="the change sensor's days")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    first = TODAY - timedelta(days=args.days - 1)
    os.environ["WINDPIPE_PARTITIONS_START"] = first.isoformat()  # before the partitions load

    from dagster import (
        AssetKey,
        AssetObservation,
        AutomationCondition,
        DagsterInstance,
        DataVersion,
        DataVersionsByPartition,
        Definitions,
        SensorResult,
        build_schedule_context,
        build_sensor_context,
        evaluate_automation_conditions,
        observable_source_asset,
    )
    from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests
    from dagster._core.definitions.observe import observe

    from windpipe.etl.extract import ApiClient
    from windpipe.orchestration.defs.assets import build_aggregates, turbine_keys
    from windpipe.orchestration.defs.events import build_event_changes, event_keys
    from windpipe.orchestration.defs.jobs import build_job
    from windpipe.orchestration.defs.partitions import daily_partitions
    from windpipe.orchestration.defs.resources import EtlResource
    from windpipe.orchestration.defs.schedules import TODAY_CRON, build_schedules
    from windpipe.orchestration.defs.sensors import build_catch_up, build_source_changes
    from windpipe.orchestration.instance import ensure_instance, initialize_storage
    from windpipe.postgres import database_url, make_engine, stop_embedded
    from windpipe.settings import load_settings
    from windpipe.source.events import upsert_events
    from windpipe.source.generator import farm
    from windpipe.source.seed import seed_source
    from windpipe.source.store import ensure_schema as ensure_source_schema
    from windpipe.testing import start_api
    from windpipe.warehouse.store import ensure_schema as ensure_target_schema

    data_dir = Path(tempfile.mkdtemp(prefix="windpipe-bench-automation-"))
    try:
        settings = load_settings(data_dir=data_dir, _env_file=None)
        source_url = database_url(settings, "source")
        source, target = make_engine(source_url), make_engine(database_url(settings, "target"))
        ensure_source_schema(source)
        ensure_target_schema(target)
        specs = farm(args.turbines)
        turbines = [s.id for s in specs]
        began = time.perf_counter()
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        seeded = seed_source(
            source, start, datetime.now(UTC) - timedelta(minutes=5), turbines=specs, freq="10min"
        )
        print(
            f"seeded {args.turbines} turbines x {args.days} days ({seeded.rows_written:,} "
            f"samples) in {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        api = start_api(source_url, wait=60)
        home = data_dir / "dagster"
        ensure_instance(home, settings)
        initialize_storage(home)
        target_url = database_url(settings, "target").render_as_string(hide_password=False)
        etl = EtlResource(api_url=api.url, target_db_url=target_url, retries=1)
        keys = turbine_keys(turbines)
        aggregates = build_aggregates(turbines)
        job = build_job(aggregates)
        catch_up = build_catch_up(keys, job)
        changes = build_source_changes(keys, job, lookback_days=args.lookback)
        today_schedule = build_schedules(job)[1]
        repository = Definitions(
            assets=[aggregates],
            jobs=[job],
            sensors=[catch_up, changes],
            schedules=[today_schedule],
            resources={"etl": etl},
        ).get_repository_def()
        partitions = args.turbines * len(daily_partitions.get_partition_keys())
        rows: list[tuple[str, str, float, str, str]] = []
        try:
            with DagsterInstance.from_config(str(home)) as instance:

                def sensor_tick(sensor: Any, cursor: str | None) -> SensorResult:
                    with build_sensor_context(
                        instance=instance,
                        resources={"etl": etl},
                        cursor=cursor,
                        repository_def=repository,
                    ) as context:
                        result = sensor(context)
                    assert isinstance(result, SensorResult)
                    return result

                # -- catch-up, hand-written
                fresh_s, fresh = _median(args.runs, lambda: sensor_tick(catch_up, None))
                sizes = [_request_partitions(r, args.turbines) for r in fresh.run_requests or []]
                rows.append(
                    (
                        "catch-up",
                        "catch_up sensor, first tick",
                        fresh_s,
                        f"{len(sizes)} runs of {_spread(sizes)} partitions "
                        f"({sum(sizes):,} of {partitions:,}; the rest in the next ticks)",
                        "0 (a tick and its cursor)",
                    )
                )
                steady_s, _ = _median(args.runs, lambda: sensor_tick(catch_up, fresh.cursor))
                rows.append(
                    (
                        "catch-up",
                        "catch_up sensor, nothing to request",
                        steady_s,
                        "0 runs",
                        "0",
                    )
                )

                # -- catch-up and refresh, declarative
                graph_of = {}
                conditions = {
                    "on_missing()": AutomationCondition.on_missing(),
                    "on_missing() without its latest window": (
                        AutomationCondition.on_missing().without(
                            AutomationCondition.in_latest_time_window()
                        )
                    ),
                    "missing() & ~in_progress()": (
                        AutomationCondition.missing() & ~AutomationCondition.in_progress()
                    ),
                    f"on_cron({TODAY_CRON})": AutomationCondition.on_cron(TODAY_CRON),
                }
                for label, condition in conditions.items():
                    assets = aggregates.map_asset_specs(
                        lambda spec, c=condition: spec.replace_attributes(automation_condition=c)
                    )
                    assets = Definitions(assets=[assets], resources={"etl": etl})
                    graph_of[label] = assets.resolve_asset_graph()
                    at = datetime.now(UTC).replace(second=0, microsecond=0)
                    at -= timedelta(minutes=at.minute % 10)  # on a tick of the cron
                    first_s, first_tick = _median(
                        args.runs,
                        lambda a=assets, t=at: evaluate_automation_conditions(
                            defs=a, instance=instance, evaluation_time=t - timedelta(minutes=1)
                        ),
                    )
                    warm = evaluate_automation_conditions(
                        defs=assets,
                        instance=instance,
                        evaluation_time=at - timedelta(minutes=1),
                    )
                    tick_s, tick = _median(
                        args.runs,
                        lambda a=assets, t=at, c=warm.cursor: evaluate_automation_conditions(
                            defs=a, instance=instance, evaluation_time=t, cursor=c
                        ),
                    )
                    after_s, after = _median(
                        args.runs,
                        lambda a=assets, t=at, c=tick.cursor: evaluate_automation_conditions(
                            defs=a,
                            instance=instance,
                            evaluation_time=t + timedelta(seconds=30),
                            cursor=c,
                        ),
                    )
                    for name, result, seconds in (
                        ("first tick", first_tick, first_s),
                        ("tick at the cron", tick, tick_s),
                        ("next tick, no run launched meanwhile", after, after_s),
                    ):
                        rows.append(
                            (
                                _kind(label),
                                f"{label}, {name}",
                                seconds,
                                _daemon_requests(result, graph_of[label], build_run_requests),
                                f"{result.total_requested:,} planned (1 a partition)",
                            )
                        )

                # -- the 10-minute schedule
                def schedule_tick() -> object:
                    with build_schedule_context(
                        instance=instance,
                        scheduled_execution_time=datetime.now(UTC),
                        repository_def=repository,
                    ) as context:
                        return today_schedule.evaluate_tick(context)

                schedule_s, _ = _median(args.runs, schedule_tick)
                rows.append(
                    (
                        "refresh",
                        "today_every_10min schedule, a tick",
                        schedule_s,
                        "1 run of 1 partition (10 turbines)",
                        f"{args.turbines} planned",
                    )
                )

                # -- change detection: the sensor, then the observable source asset
                changes_s, _ = _median(args.runs, lambda: sensor_tick(changes, None))
                cells = args.turbines * args.lookback
                rows.append(
                    (
                        "changes",
                        f"source_changes sensor ({cells} turbine-days)",
                        changes_s,
                        "0 runs (nothing changed)",
                        "0",
                    )
                )
                lo = max(first, TODAY - timedelta(days=args.lookback - 1))

                def source_days_of(turbine: str) -> Any:
                    @observable_source_asset(
                        key=AssetKey(["source_days", turbine]), partitions_def=daily_partitions
                    )
                    def source_days() -> DataVersionsByPartition:
                        """Each day's fingerprint of the turbine's source samples."""
                        with ApiClient(api.url) as client:
                            prints = client.fingerprints(lo, TODAY, [turbine])
                        return DataVersionsByPartition(
                            {d.isoformat(): DataVersion(p) for (_, d), p in prints.items()}
                        )

                    return source_days

                observed = [source_days_of(t) for t in turbines]
                before = _events(instance)
                observe_s, _ = _median(
                    1, lambda: [observe([a], instance=instance) for a in observed]
                )
                written = _events(instance) - before
                rows.append(
                    (
                        "changes",
                        f"observable source asset, a pass ({cells} turbine-days)",
                        observe_s,
                        f"{len(observed)} observation runs (1 with one asset for all)",
                        f"{written:,}",
                    )
                )
                observations = [
                    AssetObservation(
                        asset_key=AssetKey(["source_days", t]),
                        partition=(lo + timedelta(days=n)).isoformat(),
                        tags={"dagster/data_version": f"{n}:x"},
                    )
                    for t in turbines
                    for n in range(args.lookback)
                ]
                began = time.perf_counter()
                for event in observations:
                    instance.report_runless_asset_event(event)
                report_s = time.perf_counter() - began
                rows.append(
                    (
                        "changes",
                        f"  of which writing {len(observations)} observation events",
                        report_s,
                        "-",
                        f"{len(observations):,}",
                    )
                )

                # -- events: the event_changes sensor, idle and after an import of a month
                event_sensor = build_event_changes(event_keys(turbines))
                started = sensor_tick(event_sensor, None)
                idle_s, _ = _median(args.runs, lambda: sensor_tick(event_sensor, started.cursor))
                rows.append(
                    (
                        "events",
                        "event_changes sensor, nothing written",
                        idle_s,
                        "0 runs",
                        "0",
                    )
                )
                month = [TODAY - timedelta(days=n) for n in range(args.lookback)]
                written_events = pl.DataFrame(
                    {
                        "turbine": [t for t in turbines for _ in month],
                        "start": [
                            datetime(d.year, d.month, d.day, 6, tzinfo=UTC)
                            for _ in turbines
                            for d in month
                        ],
                        "end": [
                            datetime(d.year, d.month, d.day, 7, tzinfo=UTC)
                            for _ in turbines
                            for d in month
                        ],
                        "code": "201",
                        "message": "bench",
                    }
                )
                upsert_events(source, written_events)
                import_s, reported = _median(
                    args.runs, lambda: sensor_tick(event_sensor, started.cursor)
                )
                began = time.perf_counter()
                for event in reported.asset_events:
                    instance.report_runless_asset_event(event)
                store_s = time.perf_counter() - began
                rows.append(
                    (
                        "events",
                        f"event_changes sensor, an import of {written_events.height} events "
                        f"({args.turbines} turbines x {args.lookback} days)",
                        import_s,
                        "0 runs (the automation asks for the figures)",
                        f"{len(reported.asset_events):,}",
                    )
                )
                rows.append(
                    (
                        "events",
                        f"  of which writing {len(reported.asset_events)} materializations",
                        store_s,
                        "-",
                        f"{len(reported.asset_events):,}",
                    )
                )
        finally:
            api.stop()
        _print(rows, args, partitions)
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def _kind(label: str) -> str:
    return "refresh" if label.startswith("on_cron") else "catch-up"


def _events(instance: Any) -> int:
    from dagster import EventRecordsFilter
    from dagster._core.events import DagsterEventType

    records = instance.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.ASSET_OBSERVATION), limit=1_000_000
    )
    return len(records)


def _request_partitions(request: Any, turbines: int) -> int:
    tags = request.tags
    if "dagster/asset_partition_range_start" in tags:
        a = date.fromisoformat(tags["dagster/asset_partition_range_start"])
        b = date.fromisoformat(tags["dagster/asset_partition_range_end"])
        days = (b - a).days + 1
    else:
        days = 1
    chosen = len(request.asset_selection) if request.asset_selection else turbines
    return days * chosen


def _spread(sizes: list[int]) -> str:
    return (
        "0"
        if not sizes
        else f"{min(sizes)}"
        if min(sizes) == max(sizes)
        else (f"{min(sizes)}-{max(sizes)}")
    )


def _daemon_requests(result: Any, graph: Any, build: Callable[..., Any]) -> str:
    """What the automation daemon would launch for ``result``: as a backfill (its default), and
    as runs (``emit_backfills=False``)."""
    subsets = list(result._requested_subsets)
    if not result.total_requested:
        return "0 runs"
    backfills = build(subsets, graph, None, emit_backfills=True)
    runs = build(subsets, graph, None, emit_backfills=False)
    sizes = []
    for r in runs:
        tags = r.tags
        if "dagster/asset_partition_range_start" in tags:
            a = date.fromisoformat(tags["dagster/asset_partition_range_start"])
            b = date.fromisoformat(tags["dagster/asset_partition_range_end"])
            sizes.append(((b - a).days + 1) * len(r.asset_selection or []))
        else:
            sizes.append(len(r.asset_selection or []))
    kinds = "backfill" if any(r.requires_backfill_daemon() for r in backfills) else "run"
    return (
        f"{len(backfills)} {kinds}(s) of {result.total_requested:,} partitions; "
        f"or {len(runs)} runs of {_spread(sizes)}"
    )


#: Ticks an hour: the sensors' and the automation sensor's minimum intervals (30 s, 120 s for
#: the change sensor, whose pass the observation would replace), the schedule's cron.
TICKS_AN_HOUR = {
    "catch_up": 120,
    "on_": 120,
    "missing": 120,
    "today_every": 6,
    "source_changes": 30,
    "event_changes": 120,
    "observable": 30,
}


def _ticks(name: str) -> int | None:
    return next((n for prefix, n in TICKS_AN_HOUR.items() if name.startswith(prefix)), None)


def _print(rows: list[tuple[str, str, float, str, str]], args: Any, partitions: int) -> None:
    print(
        f"\n== {args.turbines} turbines x {args.days} days ({partitions:,} partitions); "
        f"medians of {args.runs} evaluations; 'x hand': to the hand-written part's tick, "
        "'s an hour': a tick's time x ticks an hour"
    )
    print(
        f"{'':9}{'mechanism, tick':<60}{'ms':>8}  {'x hand':>6}  {'s an hour':>9}  "
        "requests; events written"
    )
    base: dict[str, float] = {}
    for kind, name, seconds, _, _ in rows:
        if name.startswith(
            (
                "catch_up sensor, nothing",
                "today_every",
                "source_changes",
                "event_changes sensor, nothing",
            )
        ):
            base[kind] = seconds
    for kind, name, seconds, requests, events in rows:
        ratio = seconds / base[kind] if base.get(kind) else float("nan")
        ticks = _ticks(name)
        hourly = f"{seconds * ticks:>9.2f}" if ticks else f"{'-':>9}"
        print(
            f"{kind:<9}{name:<60}{seconds * 1000:>8.1f}  {ratio:>5.1f}x  {hourly}  "
            f"{requests}; {events}"
        )


if __name__ == "__main__":
    main()
