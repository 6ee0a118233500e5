"""The daily figures and quality flags of each turbine, downstream of its aggregates and events.

``kpis_daily/<turbine>`` (``etl.kpis``: energy, availability, lost production) and
``flags_daily/<turbine>`` (``etl.flags``) share the aggregates' daily partitions and depend on the
same partition of ``aggregates_10min/<turbine>`` and of ``turbine_events/<turbine>``, an external
asset (the source's ``turbine_event`` table) that the ``event_changes`` sensor reports updated for
each (turbine, day) an events import, the seed or the live feed wrote. Dagster's declarative
automation keeps the figures current (``FIGURES_CONDITION``, evaluated by the
``figures_automation`` sensor): a day whose aggregates are materialized (the catch-up, the
schedules, a late correction reloaded by the change sensor, a backfill) or whose events changed
has its figures and flags requested again.
"""

import warnings
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckExecutionContext,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    BackfillPolicy,
    BetaWarning,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    multi_asset,
)

from windpipe.orchestration.defs.checks import Outcome, checked_days, per_turbine_check, table_of
from windpipe.orchestration.defs.events import EVENTS
from windpipe.orchestration.defs.partitions import daily_partitions, partition_days
from windpipe.orchestration.defs.resources import EtlResource
from windpipe.orchestration.fleet import asset_path, events_path, flags_path, kpis_path
from windpipe.orchestration.instance import DATABASES_POOL
from windpipe.settings import AvailabilityConfig

if TYPE_CHECKING:
    import polars as pl

#: A dep's partition materialized since the previous tick, with the time of that materialization.
#: Dagster's ``any_deps_updated()`` wraps this in ``&``/``|`` (same-run updates excluded), which
#: drop the times ``since`` needs to tell an update after a request from one before it.
DEPS_UPDATED = AutomationCondition.any_deps_match(AutomationCondition.newly_updated()).with_label(
    "any_deps_updated (timed)"
)
#: Dagster's eager condition on every partition, not only the latest, reset by a request only:
#: a partition is requested once its aggregates' or its events' partition is materialized after
#: its last request (or it goes missing), not while its aggregates are missing or being computed,
#: not while it is itself in progress. ``eager()`` alone would look at today's partition only (a
#: late correction of a past day would never reach its figures) and wait for every dep (a day
#: without reported events would wait forever); and it counts the partition's own materialization
#: as handling an update, so an events import reported while that day's figures were running
#: (they had read the events before it) was lost when the run finished. Here ``since`` compares
#: the dep's materialization time with the requesting tick's: a later update asks again.
FIGURES_CONDITION = (
    (
        DEPS_UPDATED.since(AutomationCondition.newly_requested())
        | AutomationCondition.newly_missing().since(
            AutomationCondition.newly_requested() | AutomationCondition.initial_evaluation()
        )
    ).with_label("deps updated or newly missing since requested")
    & ~AutomationCondition.any_deps_missing().ignore(EVENTS)
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("eager (every partition; events may be unreported; reset by a request only)")
#: ``[availability] reference_days``' default: the history of a day's measured reference curve.
REFERENCE_DAYS = AvailabilityConfig().reference_days
#: Days per run of the figures: a catch-up of a year is a few runs, each starting well within
#: Dagster's 120 s start timeout (a run of 100 partitions starts in about a second).
FIGURES_RUN_DAYS = 100
#: The sensor's run tag saying who asked (as the catch-up's and the change sensor's runs do).
TRIGGER_TAG = "windpipe/trigger"
#: Dagster's run-queue priority tag (higher first; untagged runs are 0).
PRIORITY_TAG = "dagster/priority"
#: A check's 5 % margin over the rated energy of a day (rounding of ratings, over-rating).
ENERGY_MARGIN = 1.05


def figure_keys(turbines: Sequence[str]) -> tuple[dict[str, AssetKey], dict[str, AssetKey]]:
    """Each turbine's key of its daily figures and of its flags, in fleet order."""
    return (
        {t: AssetKey(kpis_path(t)) for t in turbines},
        {t: AssetKey(flags_path(t)) for t in turbines},
    )


def history_mapping(days: int) -> TimeWindowPartitionMapping:
    """A day's partition depends on that day's and the ``days`` days before it: the events of a
    day reach the figures of the days whose measured reference curve they enter."""
    with warnings.catch_warnings():  # a beta parameter: the first days have fewer days before
        warnings.simplefilter("ignore", BetaWarning)
        return TimeWindowPartitionMapping(
            start_offset=-days, allow_nonexistent_upstream_partitions=True
        )


def _specs(
    keys: dict[str, AssetKey],
    what: str,
    layer: str,
    events: TimeWindowPartitionMapping | None = None,
) -> list[AssetSpec]:
    return [
        AssetSpec(
            key,
            description=f"{what} of turbine {turbine} per UTC day.",
            group_name="windpipe",
            kinds={"python", "postgres"},
            tags={"layer": layer, "windpipe/turbine": key.path[-1]},
            metadata={"turbine": turbine},
            partitions_def=daily_partitions,
            deps=[
                AssetDep(AssetKey(asset_path(turbine))),
                AssetDep(AssetKey(events_path(turbine)), partition_mapping=events),
            ],
            automation_condition=FIGURES_CONDITION,
        )
        for turbine, key in keys.items()
    ]


def build_figures(
    turbines: Sequence[str], reference_days: int = REFERENCE_DAYS
) -> tuple[AssetsDefinition, AssetsDefinition]:
    """The multi-assets of the fleet's daily figures and of its quality flags. A day's figures
    depend on the events of that day and of the ``reference_days`` (``[availability]``) before
    it, whose windows fit its measured reference curve; its flags on that day's events."""
    kpi_keys, flag_keys = figure_keys(turbines)

    @multi_asset(
        specs=_specs(
            kpi_keys,
            "Energy, availability (IEC 61400-26) and lost production",
            "kpis",
            events=history_mapping(reference_days),
        ),
        name="kpis_daily",
        partitions_def=daily_partitions,
        can_subset=True,
        pool=DATABASES_POOL,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=FIGURES_RUN_DAYS),
    )
    def kpis_daily(context: AssetExecutionContext, etl: EtlResource) -> Iterator[MaterializeResult]:
        """Each selected turbine's daily figures, computed from its aggregates and the events."""
        chosen = [t for t, key in kpi_keys.items() if key in context.selected_asset_keys]
        yield from _kpis(context, chosen, kpi_keys, etl)

    @multi_asset(
        specs=_specs(flag_keys, "Quality flags (out_of_range, flatline, icing, stops)", "flags"),
        name="flags_daily",
        partitions_def=daily_partitions,
        can_subset=True,
        pool=DATABASES_POOL,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=FIGURES_RUN_DAYS),
    )
    def flags_daily(
        context: AssetExecutionContext, etl: EtlResource
    ) -> Iterator[MaterializeResult]:
        """Each selected turbine's quality flags per window, computed from its aggregates."""
        chosen = [t for t, key in flag_keys.items() if key in context.selected_asset_keys]
        yield from _flags(context, chosen, flag_keys, etl)

    return kpis_daily, flags_daily


def _kpis(
    context: AssetExecutionContext, turbines: list[str], keys: dict[str, AssetKey], etl: EtlResource
) -> Iterator[MaterializeResult]:
    import polars as pl

    from windpipe.analytics.power_curve import CurveConfig
    from windpipe.etl.kpis import run_kpis

    first, last = partition_days(context.partition_time_window)
    settings = etl.settings()
    with etl.session(turbines) as session:
        held = [] if settings.turbines_declared else session.client.turbines()
        fleet = [t for t in settings.fleet_of(held) if t.id in set(turbines)]
        run = run_kpis(
            first,
            last,
            client=session.client,
            engine=session.engine,
            fleet=fleet,
            codes=settings.event_categories,
            classes=settings.availability.classes,
            window=settings.window,
            max_days=settings.api_max_range_days,
            history_days=settings.availability.reference_days,
            curve=CurveConfig.of(settings),
        )
    context.log.info(
        f"{first}..{last}: {run.rows} turbine-day(s) stored, {run.events} event(s) read"
        + (f", unknown codes {', '.join(run.unknown_codes)}" if run.unknown_codes else "")
    )
    kpis = run.figures.kpis
    for turbine in turbines:
        mine = kpis.filter(pl.col("turbine") == turbine)
        for row in mine.iter_rows(named=True):
            context.add_asset_metadata(
                {
                    "energy_kwh": MetadataValue.float(float(row["energy_kwh"] or 0.0)),
                    "availability_time": _figure(row["availability_time"]),
                    "availability_energy": _figure(row["availability_energy"]),
                    "lost_production_kwh": MetadataValue.float(
                        float(row["lost_production_kwh"] or 0.0)
                    ),
                    "coverage": MetadataValue.float(float(row["coverage"] or 0.0)),
                    "reference_curve": row["reference"] or "",
                    "reference_days": settings.availability.reference_days,
                },
                asset_key=keys[turbine],
                partition_key=row["day"].isoformat(),
            )
        yield MaterializeResult(
            asset_key=keys[turbine], metadata={"dagster/row_count": mine.height}
        )


def _figure(value: float | None) -> MetadataValue:
    return MetadataValue.null() if value is None else MetadataValue.float(float(value))


def _flags(
    context: AssetExecutionContext, turbines: list[str], keys: dict[str, AssetKey], etl: EtlResource
) -> Iterator[MaterializeResult]:
    from windpipe.analytics.flags import FLAGS, FlagConfig
    from windpipe.analytics.power_curve import Site
    from windpipe.etl.flags import run_flags

    first, last = partition_days(context.partition_time_window)
    settings = etl.settings()
    fleet = {t.id: t for t in settings.fleet}
    with etl.session(turbines) as session:
        result = run_flags(
            client=session.client,
            engine=session.engine,
            turbines=turbines,
            first=first,
            last=last,
            config=FlagConfig.of(settings),
            sites={t: Site.of(fleet[t]) if t in fleet else Site() for t in turbines},
            codes=settings.event_categories,
            icing_reference=timedelta(days=settings.flags_icing_reference_days),
        )
    context.log.info(
        f"{first}..{last}: {result.windows:,} windows, {result.written:,} flags ("
        + ", ".join(f"{f} {result.per_flag.get(f, 0):,}" for f in FLAGS)
        + ")"
    )
    for turbine in turbines:
        yield MaterializeResult(
            asset_key=keys[turbine],
            metadata={"flags": result.per_turbine.get(turbine, 0)},
        )


def build_figure_checks(
    kpi_keys: dict[str, AssetKey], flag_keys: dict[str, AssetKey]
) -> list[AssetChecksDefinition]:
    """The checks of the daily figures and of the flags, per turbine, over the run's days."""

    @per_turbine_check(kpi_keys, "0 <= availability (time and energy) <= 1 on every day.")
    def availability_in_range(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """Both availabilities of each day lie in [0, 1]."""
        import polars as pl

        bad = _kpi_rows(context, etl, turbines).filter(
            pl.any_horizontal(
                ~pl.col(c).is_between(0.0, 1.0)
                for c in ("availability_time", "availability_energy")
            )
        )
        yield from _outcomes(
            turbines,
            bad,
            ["availability_time", "availability_energy"],
            "availability outside [0, 1]",
        )

    @per_turbine_check(kpi_keys, "A day's energy <= rated power x 24 h x 1.05 (no rating: skip).")
    def energy_within_rating(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """No day produced more than the turbine's rated power for 24 hours, with 5 % margin."""
        import polars as pl

        rows = _kpi_rows(context, etl, turbines)
        rated = rows.filter(pl.col("rated_power_kw").is_not_null())
        bad = rated.filter(pl.col("energy_kwh") > pl.col("rated_power_kw") * 24.0 * ENERGY_MARGIN)
        unrated = set(rows["turbine"].to_list()) - set(rated["turbine"].to_list())
        for outcome in _outcomes(turbines, bad, ["energy_kwh", "rated_power_kw"], "energy above"):
            if outcome.turbine in unrated:
                note = f"{outcome.turbine}: no rated_power_kw configured; not judged"
                yield Outcome(outcome.turbine, None, outcome.metadata, note=note)
            else:
                yield outcome

    @per_turbine_check(kpi_keys, "Lost production >= 0, in all and per category.")
    def lost_production_nonnegative(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """No day, nor category of a day, lost a negative production."""
        import polars as pl

        from windpipe.warehouse.reads import kpi_losses

        bad = _kpi_rows(context, etl, turbines).filter(pl.col("lost_production_kwh") < 0)
        first, last = checked_days(context)
        with etl.engine.connect() as conn:
            losses = kpi_losses(conn, first, last, turbines).filter(pl.col("lost_kwh") < 0)
        lossy = losses.group_by("turbine", "day").agg(pl.col("category").str.join(", "))
        bad = bad.join(lossy, on=["turbine", "day"], how="full", coalesce=True)
        yield from _outcomes(turbines, bad, ["lost_production_kwh", "category"], "negative loss")

    @per_turbine_check(kpi_keys, "Event codes that [event_codes] does not name (WARN).")
    def event_codes_known(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """The turbine's events on the days name codes of ``[event_codes]`` (others count as
        forced_outage)."""
        import polars as pl

        from windpipe.catalog import unknown_codes
        from windpipe.etl.kpis import fetch_events

        first, last = checked_days(context)
        settings = etl.settings()
        codes = settings.event_categories
        with etl.session(turbines) as session:
            events = fetch_events(
                session.client, turbines, first, last, max_days=settings.api_max_range_days
            )
        for turbine in turbines:
            mine = events.filter(pl.col("turbine") == turbine)
            unknown = unknown_codes(mine, codes)
            problem = (
                f"event code(s) {', '.join(unknown[:20])} not in [event_codes]: counted as "
                "forced_outage"
                if unknown
                else None
            )
            metadata = {"events": mine.height, "unknown_codes": ", ".join(unknown) or "none"}
            yield Outcome(turbine, problem, metadata, AssetCheckSeverity.WARN)

    @per_turbine_check(flag_keys, "Flagged windows per day and flag (WARN when any).")
    def flag_counts(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """Per turbine and day: how many windows each quality flag marks."""
        import polars as pl

        from windpipe.warehouse.flags import flags_frame

        first, last = checked_days(context)
        with etl.engine.connect() as conn:
            flags = flags_frame(conn, first, last, turbines=turbines)
        counts = (
            flags.unique(["turbine", "timestamp", "flag"])
            .group_by("turbine", pl.col("timestamp").dt.date().alias("day"), "flag")
            .len("windows")
            .sort("turbine", "day", "flag")
        )
        for turbine in turbines:
            mine = counts.filter(pl.col("turbine") == turbine)
            by_flag = dict(mine.group_by("flag").agg(pl.col("windows").sum()).iter_rows())
            rows = [
                {"day": r["day"].isoformat(), "flag": r["flag"], "windows": str(r["windows"])}
                for r in mine.head(200).iter_rows(named=True)
            ]
            problem = (
                "flagged windows: " + ", ".join(f"{f} {n}" for f, n in sorted(by_flag.items()))
                if by_flag
                else None
            )
            metadata = {
                "flagged_windows": int(mine["windows"].sum()) if mine.height else 0,
                **{f"flag_{f}": int(n) for f, n in by_flag.items()},
                "per_day": table_of(["day", "flag", "windows"], rows),
            }
            yield Outcome(turbine, problem, metadata, AssetCheckSeverity.WARN)

    return [
        availability_in_range,
        energy_within_rating,
        lost_production_nonnegative,
        event_codes_known,
        flag_counts,
    ]


def _kpi_rows(
    context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
) -> "pl.DataFrame":
    from windpipe.warehouse.reads import kpi_rows

    first, last = checked_days(context)
    with etl.engine.connect() as conn:
        return kpi_rows(conn, first, last, turbines)


def _outcomes(
    turbines: list[str], bad: "pl.DataFrame", columns: list[str], what: str
) -> Iterator[Outcome]:
    """One outcome per turbine: failed naming the days of ``bad`` (its rows) when it holds any."""
    import polars as pl

    for turbine in turbines:
        mine = bad.filter(pl.col("turbine") == turbine)
        rows = [
            {"day": r["day"].isoformat(), **{c: str(r.get(c)) for c in columns}}
            for r in mine.head(100).iter_rows(named=True)
        ]
        problem = (
            f"{mine.height} day(s) with {what}, e.g. {rows[0]['day']}: "
            + ", ".join(f"{c}={rows[0][c]}" for c in columns)
            if rows
            else None
        )
        metadata = {"bad_days": mine.height, "days": table_of(["day", *columns], rows)}
        yield Outcome(turbine, problem, metadata)


def build_automation_sensor(
    assets: Sequence[AssetsDefinition],
) -> AutomationConditionSensorDefinition:
    """Dagster's automation sensor over ``assets``, running from the start (as the catch-up)."""
    return AutomationConditionSensorDefinition(
        "figures_automation",
        target=AssetSelection.assets(*assets),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        # Below the catch-up's and the schedules' runs in the queue (same pool): the figures of
        # a day wait for the aggregates still missing, not the other way round.
        run_tags={TRIGGER_TAG: "automation", PRIORITY_TAG: "-1"},
        description="Requests each turbine's daily figures and flags of the days whose "
        "aggregates were materialized (declarative automation, FIGURES_CONDITION).",
    )
