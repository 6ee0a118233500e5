"""The turbines' events as Dagster sees them: an external asset per turbine, reported updated.

``turbine_events/<turbine>`` is the source's ``turbine_event`` table, daily-partitioned as the
aggregates are; windpipe never materializes it. The source logs every write to it (migration
s0006: one change per turbine and statement, with the span of the events touched), and the
``event_changes`` sensor reads that log after the last change it handled (``GET /events/changes``,
one small request a tick) and reports each (turbine, day) written as a materialization of the
turbine's events. The daily figures and flags depend on them, so Dagster's automation computes a
day's figures again once an events import, the seed or the live feed changed what its events say.
"""

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    AssetSpec,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from windpipe.catalog import EventChange
from windpipe.errors import EtlError
from windpipe.orchestration.defs.partitions import daily_partitions
from windpipe.orchestration.defs.resources import EtlResource
from windpipe.orchestration.fleet import EVENTS_PREFIX, events_path

#: Every turbine's events: external, so a day never reported is "missing" to Dagster, although
#: the figures read whatever the source holds (no events is a valid answer).
EVENTS = AssetSelection.key_prefixes([EVENTS_PREFIX], include_sources=True)
#: The most (turbine, day)s one tick reports, the rest in the next ticks (a change is never split):
#: the daemon stores each as an event (tens of ms each in SQLite on a busy laptop).
MAX_TICK_PARTITIONS = 1_000
#: Changes asked of the API per request.
PAGE = 1_000


def event_keys(turbines: Sequence[str]) -> dict[str, AssetKey]:
    """Each turbine's key of its events, in fleet order."""
    return {t: AssetKey(events_path(t)) for t in turbines}


def build_event_specs(turbines: Sequence[str]) -> list[AssetSpec]:
    """The turbines' events as external assets: the source's, never materialized by windpipe."""
    return [
        AssetSpec(
            key,
            description=f"Events of turbine {turbine} per UTC day (the source's turbine_event: "
            "`windpipe events import`, the seed, the live feed), reported by the event_changes "
            "sensor when written.",
            group_name="windpipe",
            kinds={"postgres"},
            tags={"layer": "source", "windpipe/turbine": key.path[-1]},
            metadata={"turbine": turbine},
            partitions_def=daily_partitions,
        )
        for turbine, key in event_keys(turbines).items()
    ]


def changed_pairs(
    changes: Sequence[EventChange], turbines: Sequence[str], floor: date, ceiling: date
) -> list[set[tuple[str, date]]]:
    """Per change, the (turbine, day)s of ``turbines`` it touches within ``[floor, ceiling]``
    (a change of another turbine touches none; one of every turbine, all of them)."""
    return [
        {
            (turbine, day)
            for turbine in (turbines if change.turbine is None else [change.turbine])
            if turbine in turbines
            for day in change.days(floor, ceiling)
        }
        for change in changes
    ]


def _after(cursor: str | None) -> int | None:
    try:
        return int(json.loads(cursor or "{}")["after"])
    except (ValueError, KeyError, TypeError):
        return None


def build_event_changes(
    keys: dict[str, AssetKey],
    *,
    interval_seconds: int = 30,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SensorDefinition:
    """The sensor reporting each turbine's events updated on the days written since its last tick.

    Its cursor is the last change handled; its first tick reads the log from its beginning (the
    log starts empty with migration s0006, so that is what was written since: on a fresh farm the
    seed's events, whose days' figures are then asked once more at most). Not from the newest
    change: a write between the code location's start and the first tick would be lost.
    """
    turbines = list(keys)

    @sensor(
        name="event_changes",
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Reports turbine_events/<turbine> updated for each (turbine, day) whose events "
        "were written (source migration s0006's log, through GET /events/changes), so the daily "
        "figures and flags of those days are computed again.",
    )
    def event_changes(context: SensorEvaluationContext, etl: EtlResource) -> SensorResult:
        """Reports the turbines' events updated on each day an import, the seed or the feed
        wrote since the last change handled."""
        after = _after(context.cursor) or 0
        floor = daily_partitions.start.date()
        ceiling = clock().astimezone(UTC).date()  # today: the last partition (end_offset=1)
        reported: set[tuple[str, date]] = set()
        try:
            with etl.session(turbines, retries=1) as session:
                full = False
                while not full:
                    _, changes = session.client.event_changes(after, PAGE)
                    for change, pairs in zip(
                        changes, changed_pairs(changes, turbines, floor, ceiling), strict=True
                    ):
                        if reported and len(reported | pairs) > MAX_TICK_PARTITIONS:
                            full = True  # the rest next tick; a change is reported whole
                            break
                        reported |= pairs
                        after = change.id
                    if len(changes) < PAGE:
                        break
        except EtlError as exc:
            return SensorResult(skip_reason=f"the API does not answer yet: {exc}")
        cursor = json.dumps({"after": after})
        if not reported:
            return SensorResult(
                skip_reason=f"no events written since change {after}", cursor=cursor
            )
        days = sorted({d for _, d in reported})
        context.log.info(
            f"events written: {len(reported):,} (turbine, day)s from {days[0]} to {days[-1]} "
            f"({', '.join(t for t in turbines if any(p[0] == t for p in reported))}); up to "
            f"change {after}"
        )
        return SensorResult(
            asset_events=[
                AssetMaterialization(
                    asset_key=keys[turbine],
                    partition=day.isoformat(),
                    metadata={"event_change": after},
                )
                for turbine, day in sorted(reported, key=lambda p: (turbines.index(p[0]), p[1]))
            ],
            cursor=cursor,
        )

    return event_changes
