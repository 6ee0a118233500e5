"""Sensors: the catch-up (days with source data but no aggregates) and the change sensor (loaded
days whose source changed since: late data, corrections), each requesting one run at a time."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

if TYPE_CHECKING:  # Dagster does not export the type of define_asset_job's result
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from windpipe.catalog import days_between
from windpipe.errors import EtlError
from windpipe.orchestration import catchup
from windpipe.orchestration.catchup import (
    RunPlan,
    describe_days,
    missing_pairs,
    plan_runs,
    run_size,
    within_budget,
)
from windpipe.orchestration.defs.assets import TURBINE_KEYS
from windpipe.orchestration.defs.jobs import etl_job
from windpipe.orchestration.defs.partitions import daily_partitions
from windpipe.orchestration.defs.resources import EtlResource
from windpipe.orchestration.defs.schedules import YESTERDAY_AT
from windpipe.orchestration.kubernetes import k8s_run_tags

#: Dagster's run tags for a single run over a partition range (what a single-run backfill sets).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
#: Why a run was requested: "catch-up", "source-change".
TRIGGER_TAG = "windpipe/trigger"
#: How many failed runs the catch-up's cursor remembers having counted.
SEEN_RUNS = 200
#: A day requested less than this long ago is not requested again (e.g. while its run fails).
COOLDOWN_SECONDS = 600
#: How long after the daily schedule's tick yesterday stays the schedules' (its run is queued or
#: running by then, and skipped as in flight); the change sensor owns it afterwards.
HANDOVER = timedelta(minutes=10)
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def live_edge(now: datetime) -> set[date]:
    """The days the schedules own at ``now`` (aware UTC): today, refreshed every 10 minutes while
    its windows close and its samples arrive, and yesterday until its final load at
    ``YESTERDAY_AT`` has been requested (plus ``HANDOVER``). The change sensor leaves them out,
    so that one mechanism, not two, materializes the live edge."""
    today = now.astimezone(UTC).date()
    handover = datetime.combine(today, YESTERDAY_AT, tzinfo=UTC) + HANDOVER
    return {today, today - timedelta(days=1)} if now < handover else {today}


def run_days(tags: dict[str, str]) -> list[date]:
    """The days a run covers, from its partition or partition-range tags."""
    if PARTITION_TAG in tags:
        return [date.fromisoformat(tags[PARTITION_TAG])]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        first, last = (date.fromisoformat(tags[t]) for t in (RANGE_START_TAG, RANGE_END_TAG))
        return days_between(first, last)
    return []


def in_flight_days(instance: DagsterInstance, job_name: str = "windpipe_etl") -> set[date]:
    """Days covered by ETL runs that are queued or running."""
    runs = instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=IN_FLIGHT))
    return {day for run in runs for day in run_days(dict(run.tags))}


def run_pairs(run: DagsterRun, keys: dict[str, AssetKey]) -> set[tuple[str, date]]:
    """The (turbine, day)s a run covers: its days, times its selected turbines (None: all)."""
    selected = run.asset_selection
    turbines = [t for t, key in keys.items() if selected is None or key in selected]
    return {(t, day) for day in run_days(dict(run.tags)) for t in turbines}


def in_flight_pairs(
    instance: DagsterInstance, keys: dict[str, AssetKey], job_name: str = "windpipe_etl"
) -> set[tuple[str, date]]:
    """The (turbine, day)s of ETL runs that are queued or running."""
    runs = instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=IN_FLIGHT))
    return {pair for run in runs for pair in run_pairs(run, keys)}


def range_request(
    first: date,
    last: date,
    *,
    now: datetime,
    assets: list[AssetKey] | None = None,
    trigger: str = "catch-up",
    key: str = "",
) -> RunRequest:
    """One run over the partitions ``first`` to ``last`` (a single-run backfill of them), of
    the turbines' ``assets`` (None: every turbine's)."""
    return RunRequest(
        run_key=f"{trigger}-{first}-{last}-{int(now.timestamp())}{'-' + key if key else ''}",
        asset_selection=assets,
        tags={
            RANGE_START_TAG: first.isoformat(),
            RANGE_END_TAG: last.isoformat(),
            TRIGGER_TAG: trigger,
            # On Kubernetes, the run's Job and pod are labelled with its turbines and days.
            **k8s_run_tags(first, last, None if assets is None else [a.path[-1] for a in assets]),
        },
    )


def _cooling(cursor: str | None, now: datetime) -> dict[str, float]:
    """The cursor's recently requested (turbine, day)s (``turbine/ISO date`` -> POSIX time),
    expired ones dropped."""
    try:
        requested = json.loads(cursor or "{}").get("requested", {})
    except (ValueError, AttributeError):
        requested = {}
    horizon = now.timestamp() - COOLDOWN_SECONDS
    return {day: float(t) for day, t in requested.items() if float(t) > horizon}


@dataclass
class CatchUpCursor:
    """What the catch-up sensor remembers between ticks (its cursor, as JSON)."""

    #: ``turbine/day`` -> POSIX time of its last request (dropped after ``COOLDOWN_SECONDS``).
    requested: dict[str, float] = field(default_factory=dict)
    #: ``turbine/day`` -> how many catch-up runs covering it failed.
    failures: dict[str, int] = field(default_factory=dict)
    #: The failed runs already counted (the newest ``SEEN_RUNS``).
    seen: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, cursor: str | None, now: datetime) -> "CatchUpCursor":
        """The cursor's state, expired requests dropped; a cursor of another shape is empty."""
        try:
            state = json.loads(cursor or "{}")
            horizon = now.timestamp() - COOLDOWN_SECONDS
            return cls(
                requested={
                    k: float(t) for k, t in state.get("requested", {}).items() if float(t) > horizon
                },
                failures={k: int(n) for k, n in state.get("failures", {}).items()},
                seen=[str(r) for r in state.get("seen", [])][-SEEN_RUNS:],
            )
        except (ValueError, AttributeError, TypeError):
            return cls()

    def dump(self) -> str:
        """The cursor to store."""
        return json.dumps(
            {"requested": self.requested, "failures": self.failures, "seen": self.seen[-SEEN_RUNS:]}
        )


def pair_key(turbine: str, day: date) -> str:
    """How the cursor names a (turbine, day)."""
    return f"{turbine}/{day.isoformat()}"


def _source_days(prints: dict[tuple[str, date], str], turbines: list[str]) -> dict[str, set[date]]:
    """Per turbine, the days whose fingerprint counts samples (a day emptied since counts none)."""
    days: dict[str, set[date]] = {t: set() for t in turbines}
    for (turbine, day), fingerprint in prints.items():
        if turbine in days and int(fingerprint.partition(":")[0] or 0) > 0:
            days[turbine].add(day)
    return days


def build_catch_up(
    keys: dict[str, AssetKey], job: "UnresolvedAssetJobDefinition"
) -> SensorDefinition:
    """The catch-up sensor of every turbine's asset in ``keys``, requesting runs of ``job``."""
    turbines = list(keys)

    @sensor(
        job=job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def catch_up(context: SensorEvaluationContext, etl: EtlResource) -> SensorResult:
        """Materializes each turbine's days with source data but nothing loaded, in bounded runs
        that cover only those days; runs that fail are retried smaller, then reported."""
        from windpipe.warehouse.reads import loaded_pairs

        now = datetime.now(UTC)
        state = CatchUpCursor.read(context.cursor, now)
        start = daily_partitions.start.date()
        with etl.session(turbines, retries=1) as session:
            try:
                coverage = session.client.coverage()
                if not coverage.rows or coverage.first is None or coverage.last is None:
                    return SensorResult(skip_reason="the source holds no samples yet")
                lo = max(coverage.first.date(), start)
                hi = min(coverage.last.date(), now.date())
                prints = session.client.fingerprints(lo, hi, turbines) if lo <= hi else {}
            except EtlError as exc:
                return SensorResult(skip_reason=f"the API does not answer yet: {exc}")
            source_days = _source_days(prints, turbines)
            with session.engine.connect() as conn:
                loaded = loaded_pairs(conn, source_days, session.signals)
        with_data = {(t, d) for t, days in source_days.items() for d in days}

        # Runs of ours that failed since: their missing (turbine, day)s count a failure each and
        # are asked again at once, in smaller runs.
        failed_runs = context.instance.get_runs(
            filters=RunsFilter(
                job_name=job.name,
                statuses=[DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED],
                tags={TRIGGER_TAG: "catch-up"},
            ),
            limit=SEEN_RUNS,
        )
        for run in failed_runs:
            if run.run_id in state.seen:
                continue
            state.seen.append(run.run_id)
            for pair in run_pairs(run, keys) & with_data - loaded:
                key = pair_key(*pair)
                state.failures[key] = state.failures.get(key, 0) + 1
                state.requested.pop(key, None)
        state.failures = {k: n for k, n in state.failures.items() if _pair(k) in with_data - loaded}
        given_up = {_pair(k) for k, n in state.failures.items() if n >= catchup.MAX_ATTEMPTS}
        busy = in_flight_pairs(context.instance, keys, job.name)
        cooling = {_pair(k) for k in state.requested}
        missing = missing_pairs(source_days, loaded, skip=busy | cooling | given_up)

        if not missing:
            return SensorResult(
                skip_reason=_caught_up_message(
                    with_data,
                    loaded,
                    busy | cooling,
                    given_up,
                    lo,
                    hi,
                    coverage.first.date(),
                    start,
                ),
                cursor=state.dump(),
            )
        plans: list[RunPlan] = []
        for level in sorted(
            {state.failures.get(pair_key(t, d), 0) for t, ds in missing.items() for d in ds}
        ):
            subset = {
                t: [d for d in ds if state.failures.get(pair_key(t, d), 0) == level]
                for t, ds in missing.items()
            }
            plans += plan_runs(
                subset, max_partitions=run_size(level, catchup.MAX_RUN_PARTITIONS), order=turbines
            )
        chosen = within_budget(plans, catchup.MAX_TICK_PARTITIONS)
        for plan in chosen:
            state.requested.update({pair_key(*pair): now.timestamp() for pair in plan.pairs()})
        total = sum(len(ds) for ds in missing.values())
        waiting = total - sum(p.partitions for p in chosen)
        context.log.info(
            f"catch-up: {total:,} (turbine, day)s with data and nothing loaded; requesting "
            f"{len(chosen)} run(s) of at most {catchup.MAX_RUN_PARTITIONS} partitions: "
            + "; ".join(
                f"{', '.join(p.turbines)} {describe_days([p.first, p.last])}" for p in chosen
            )
            + (f"; {waiting:,} more in later ticks" if waiting else "")
        )
        return SensorResult(
            run_requests=[
                range_request(
                    plan.first,
                    plan.last,
                    now=now,
                    assets=None
                    if len(plan.turbines) == len(keys)
                    else [keys[t] for t in plan.turbines],
                    key=str(index),
                )
                for index, plan in enumerate(chosen)
            ],
            cursor=state.dump(),
        )

    return catch_up


def _pair(key: str) -> tuple[str, date]:
    turbine, _, day = key.rpartition("/")
    return turbine, date.fromisoformat(day)


def _caught_up_message(
    with_data: set[tuple[str, date]],
    loaded: set[tuple[str, date]],
    pending: set[tuple[str, date]],
    given_up: set[tuple[str, date]],
    lo: date,
    hi: date,
    source_first: date,
    partitions_start: date,
) -> str:
    """What the catch-up sees when it has nothing to request, as it is."""
    done = len(with_data & loaded)
    parts = [f"{done:,} of {len(with_data):,} (turbine, day)s with data from {lo} to {hi} loaded"]
    running = with_data - loaded - given_up
    if running & pending:
        parts.append(f"{len(running & pending):,} requested or in runs in flight")
    if given_up:
        turbines = sorted({t for t, _ in given_up})
        parts.append(
            f"{len(given_up):,} not requested again after {catchup.MAX_ATTEMPTS} failed runs ("
            + "; ".join(f"{t} {describe_days(d for u, d in given_up if u == t)}" for t in turbines)
            + "): see the failed runs, then run `windpipe backfill` for them or launch a "
            "backfill from the UI"
        )
    if source_first < partitions_start:
        parts.append(
            f"data before {partitions_start} (the first partition; the source starts on "
            f"{source_first}) is not covered: restart `windpipe up`, or set "
            "WINDPIPE_PARTITIONS_START"
        )
    return "; ".join(parts)


def build_source_changes(
    keys: dict[str, AssetKey],
    job: "UnresolvedAssetJobDefinition",
    *,
    interval_seconds: int = 120,
    lookback_days: int = 30,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SensorDefinition:
    """The change sensor of every turbine's asset in ``keys``: each pass compares the source's
    fingerprints of the last ``lookback_days`` (one API request) with those the loads recorded
    (one target query), and requests one run for the turbines and days that went stale, but for
    the live edge (:func:`live_edge`), which the schedules own. ``clock``: now, aware UTC."""

    @sensor(
        name="source_changes",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def source_changes(context: SensorEvaluationContext, etl: EtlResource) -> SensorResult:
        """Materializes again, in one run, every loaded (turbine, day) whose source changed
        (late, back-filled or corrected samples) or whose windows have closed since; today (and
        yesterday until its final load) is the schedules'."""
        now = clock()
        edge = live_edge(now)
        last = min(edge) - timedelta(days=1)
        first = max(daily_partitions.start.date(), now.date() - timedelta(days=lookback_days - 1))
        if first > last:
            return SensorResult(skip_reason=f"only the live edge ({describe_days(edge)}) to watch")
        try:
            with etl.session(list(keys), retries=1) as session:
                stale = session.stale(first, last, now=now)
        except EtlError as exc:
            return SensorResult(skip_reason=f"the API does not answer yet: {exc}")
        cooling = _cooling(context.cursor, now)
        busy = in_flight_days(context.instance, job.name)
        todo = [s for s in stale if s.key not in cooling and s.day not in busy]
        if not todo:
            waiting = f" ({len(stale)} waiting for runs in flight)" if stale else ""
            return SensorResult(
                skip_reason=f"no loaded day from {first} to {last} is stale{waiting}; the live "
                f"edge ({describe_days(edge)}) is the schedules'",
                cursor=json.dumps({"requested": cooling}),
            )
        turbines = sorted({s.turbine for s in todo}, key=list(keys).index)
        days = sorted({s.day for s in todo})
        cooling.update({s.key: now.timestamp() for s in todo})
        context.log.info(
            f"source changes: {len(todo)} (turbine, day) stale from {days[0]} to {days[-1]} "
            f"for {', '.join(turbines)}: "
            + ", ".join(f"{s.turbine} {s.day} ({s.reason})" for s in todo[:20])
        )
        return SensorResult(
            run_requests=[
                range_request(
                    days[0],
                    days[-1],
                    now=now,
                    assets=None if len(turbines) == len(keys) else [keys[t] for t in turbines],
                    trigger="source-change",
                )
            ],
            cursor=json.dumps({"requested": cooling}),
        )

    return source_changes


catch_up = build_catch_up(TURBINE_KEYS, etl_job)
source_changes = build_source_changes(TURBINE_KEYS, etl_job)
sensors = [catch_up, source_changes]
