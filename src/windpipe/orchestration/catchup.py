"""Which (turbine, day)s the catch-up must materialize, and in which bounded runs.

Pure: the sensor reads the source's days with data, the target's loaded days and Dagster's runs,
and these functions decide. Each turbine has its own days: a turbine whose history was imported
for January 2014 misses 31 days, not every day since 2014.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

#: The most (turbine, day) partitions, and days, one catch-up run covers. Dagster writes an event
#: per partition when a run is created, and more when it fails, at a cost that grows faster than
#: the partitions; measured here on two cores shared with other work (``bench/catchup.py``), a run
#: starts 1.2 s after its first event over 30 days x 4 turbines (120 partitions), 4.5 s over 100 x 4
#: (400), 17 s over 365 x 4 (1,460) and 65 s over 1,000 x 4 (4,000), against Dagster's start
#: timeout of 120 s, which the run worker's own start-up (~5 s) also counts against. Runs of at
#: most 100 days and 400 partitions start in about 5 s.
MAX_RUN_PARTITIONS = 400
MAX_RUN_DAYS = 100
#: The most partitions requested in one sensor tick (the rest wait for the next ticks).
MAX_TICK_PARTITIONS = 4 * MAX_RUN_PARTITIONS
#: After this many failed runs, a (turbine, day) is no longer requested (reported instead).
MAX_ATTEMPTS = 3

Pair = tuple[str, date]


@dataclass(frozen=True)
class RunPlan:
    """One catch-up run: the days ``first`` to ``last`` of ``turbines``, all of them missing."""

    first: date
    last: date
    turbines: tuple[str, ...]

    @property
    def partitions(self) -> int:
        """How many (turbine, day) partitions the run covers."""
        return ((self.last - self.first).days + 1) * len(self.turbines)

    def pairs(self) -> list[Pair]:
        """The (turbine, day)s the run covers."""
        days = [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]
        return [(t, d) for d in days for t in self.turbines]


def missing_pairs(
    source_days: Mapping[str, Collection[date]],
    loaded: Collection[Pair],
    *,
    skip: Collection[Pair] = (),
) -> dict[str, list[date]]:
    """Per turbine, in order, its days with source data that are neither loaded nor in ``skip``
    (in flight, cooling down or given up); turbines that miss nothing are left out."""
    done = set(loaded) | set(skip)
    missing = {
        turbine: sorted(day for day in days if (turbine, day) not in done)
        for turbine, days in source_days.items()
    }
    return {turbine: days for turbine, days in missing.items() if days}


def plan_runs(
    missing: Mapping[str, Iterable[date]],
    *,
    max_partitions: int = MAX_RUN_PARTITIONS,
    max_days: int = MAX_RUN_DAYS,
    order: Iterable[str] | None = None,
) -> list[RunPlan]:
    """Runs covering exactly the ``missing`` (turbine, day)s, each of at most ``max_partitions``
    and ``max_days``.

    Consecutive days missed by the same turbines share a run; a run never covers a day or a
    turbine that is not missing, so a run that fails marks as failed only what was missing.
    """
    rank = {t: i for i, t in enumerate(order if order is not None else sorted(missing))}
    by_day: dict[date, set[str]] = {}
    for turbine, days in missing.items():
        for day in days:
            by_day.setdefault(day, set()).add(turbine)
    plans: list[RunPlan] = []
    segment: list[date] = []
    group: tuple[str, ...] = ()

    def close() -> None:
        if segment:
            plans.extend(_bounded(segment[0], segment[-1], group, max_partitions, max_days))

    for day in sorted(by_day):
        turbines = tuple(sorted(by_day[day], key=lambda t: rank.get(t, len(rank))))
        if segment and turbines == group and day == segment[-1] + timedelta(days=1):
            segment.append(day)
            continue
        close()
        segment, group = [day], turbines
    close()
    return plans


def _bounded(
    first: date, last: date, turbines: tuple[str, ...], max_partitions: int, max_days: int
) -> list[RunPlan]:
    """``[first, last]`` x ``turbines`` cut into runs of at most ``max_partitions``."""
    limit = max(1, max_partitions)
    groups = [turbines[i : i + limit] for i in range(0, len(turbines), limit)]
    plans = []
    for chosen in groups:
        span = max(1, min(max_days, limit // len(chosen)))
        day = first
        while day <= last:
            upto = min(last, day + timedelta(days=span - 1))
            plans.append(RunPlan(day, upto, chosen))
            day = upto + timedelta(days=1)
    return plans


def run_size(attempts: int, max_partitions: int = MAX_RUN_PARTITIONS) -> int:
    """The run size for (turbine, day)s that failed ``attempts`` times: halved each time."""
    return max(1, max_partitions >> attempts)


def within_budget(plans: Iterable[RunPlan], budget: int = MAX_TICK_PARTITIONS) -> list[RunPlan]:
    """The first ``plans`` whose partitions fit in ``budget`` (always at least one)."""
    chosen: list[RunPlan] = []
    used = 0
    for plan in plans:
        if chosen and used + plan.partitions > budget:
            break
        chosen.append(plan)
        used += plan.partitions
    return chosen


def describe_days(days: Iterable[date]) -> str:
    """Days as short ranges: ``2014-01-01..2014-01-31, 2026-12-06``."""
    spans: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if spans and day == spans[-1][1] + timedelta(days=1):
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in spans)
