"""Asset checks per turbine on the days each run loaded: window counts, consistent aggregates in
the signals' physical ranges, no duplicates, and freshness of the live edge.

Each check covers the run's partition range (a catch-up run checks all its days at once) for each
turbine it selects, and names the turbine, the days and the windows in its description and
metadata; a failed check shows red (ERROR) or yellow (WARN) on that turbine's asset in the UI.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    TableColumn,
    TableMetadataValue,
    TableRecord,
    TableSchema,
    multi_asset_check,
)

from windpipe.orchestration.defs.assets import TURBINE_KEYS
from windpipe.orchestration.defs.partitions import partition_days
from windpipe.orchestration.defs.resources import EtlResource
from windpipe.orchestration.instance import DATABASES_POOL

if TYPE_CHECKING:
    import polars as pl


def checked_days(context: AssetCheckExecutionContext) -> tuple[date, date]:
    """The days of the run's partition (range); today alone when the run has no partition."""
    op = context.op_execution_context
    if op.has_partition_key or op.has_partition_key_range:
        return partition_days(op.partition_time_window)
    today = datetime.now(UTC).date()
    return today, today


def _table(columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> TableMetadataValue:
    """A metadata table of text columns."""
    return MetadataValue.table(
        [TableRecord(dict(row)) for row in rows],
        schema=TableSchema(columns=[TableColumn(c, "string") for c in columns]),
    )


@dataclass(frozen=True)
class Outcome:
    """One turbine's result of a check: ``problem`` None when it passed."""

    turbine: str
    problem: str | None
    metadata: dict[str, Any]
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR
    #: Said even when it passed (e.g. why it was not judged).
    note: str | None = None


#: A check's work: the run's context, the ETL resource and the turbines selected -> outcomes.
CheckBody = Callable[[AssetCheckExecutionContext, EtlResource, list[str]], Iterator[Outcome]]


def build_checks(keys: dict[str, AssetKey]) -> list[AssetChecksDefinition]:
    """The checks of every turbine's asset in ``keys`` (turbine id -> asset key)."""

    def check(description: str) -> Callable[[CheckBody], AssetChecksDefinition]:
        """A check named after ``body`` on every turbine's asset, run for the turbines selected."""

        def define(body: CheckBody) -> AssetChecksDefinition:
            name = body.__name__

            @multi_asset_check(
                name=name,
                description=body.__doc__,
                specs=[
                    AssetCheckSpec(name, asset=k, description=description) for k in keys.values()
                ],
                can_subset=True,
                pool=DATABASES_POOL,
            )
            def run(
                context: AssetCheckExecutionContext, etl: EtlResource
            ) -> Iterator[AssetCheckResult]:
                chosen = {k.asset_key for k in context.selected_asset_check_keys if k.name == name}
                turbines = [t for t, key in keys.items() if key in chosen]
                for outcome in body(context, etl, turbines):
                    t = outcome.turbine
                    yield AssetCheckResult(
                        asset_key=keys[t],
                        check_name=name,
                        passed=outcome.problem is None,
                        severity=outcome.severity,
                        description=outcome.note
                        if outcome.problem is None
                        else f"{t}: {outcome.problem}",
                        metadata={"turbine": t, **outcome.metadata},
                    )

            return run

        return define

    @check("Each full day has 144 windows per signal; source gaps WARN, losses fail.")
    def windows_complete(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """Each turbine's full days have a full day of windows per signal, as the source allows."""
        from windpipe.catalog import day_bounds
        from windpipe.orchestration.quality import check_windows
        from windpipe.warehouse.reads import thin_windows

        first, last = checked_days(context)
        with etl.session(turbines) as session:

            def fetch_day(day: date) -> "pl.DataFrame":
                start, end = day_bounds(day)
                return session.client.fetch_frame(start, end, session.variables, turbines)

            with session.engine.connect() as conn:
                report = check_windows(
                    conn,
                    first,
                    last,
                    variables=session.variables,
                    aggregations=session.rollup.aggregations,
                    fetch_day=fetch_day,
                    now=datetime.now(UTC).replace(tzinfo=None),
                    turbines=turbines,
                    window=session.window,
                    thin=thin_windows(conn, first, last, turbines),
                )
        columns = [
            "day",
            "signal",
            "windows",
            "source_windows",
            "issue",
            "windows_in_dispute",
            "windows_without_samples",
        ]
        for turbine in turbines:
            findings = [f for f in report.findings if f.turbine == turbine]
            mismatches = [f for f in findings if not f.explained]
            gaps = [f for f in findings if f.explained and f.full_day]
            rows = [
                {
                    "day": f.day.isoformat(),
                    "signal": f.signal,
                    "windows": str(f.windows),
                    "source_windows": str(f.source_windows),
                    "issue": "source gap" if f.explained else "target disagrees with source",
                    "windows_in_dispute": f.lost,
                    "windows_without_samples": f.missing,
                }
                for f in findings[:100]
            ]
            metadata: dict[str, Any] = {
                "days_checked": len(report.days),
                "full_days": report.full_days,
                "complete_days": report.full_days - len({f.day for f in findings if f.full_day}),
                "days_with_source_gaps": len({f.day for f in gaps}),
                "mismatches": len(mismatches),
                "findings": _table(columns, rows),
            }
            if mismatches:
                bad = mismatches[0]
                yield Outcome(
                    turbine,
                    f"{len(mismatches)} (day, signal) disagree with the source, e.g. {bad.signal} "
                    f"on {bad.day}: {bad.windows} windows, source has {bad.source_windows}; "
                    f"windows in dispute: {bad.lost}",
                    metadata,
                )
            elif gaps:
                days = sorted({f.day.isoformat() for f in gaps})
                yield Outcome(
                    turbine,
                    "source gaps, fewer than a full day of windows on "
                    f"{', '.join(days[:5])}{' ...' if len(days) > 5 else ''}: {gaps[0].missing}",
                    metadata,
                    AssetCheckSeverity.WARN,
                )
            else:
                yield Outcome(turbine, None, metadata)

    @check("In every window min <= mean <= max, std >= 0, values in the signal's physical range.")
    def aggregates_consistent(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """In every window min <= mean <= max, std >= 0, values in the signal's physical range, and
        windows on their boundaries."""
        from windpipe.orchestration.quality import inconsistent_windows

        first, last = checked_days(context)
        settings = etl.settings()
        for turbine in turbines:
            with etl.engine.connect() as conn:
                report = inconsistent_windows(
                    conn,
                    first,
                    last,
                    turbine=turbine,
                    ranges={n: (v.low, v.high) for n, v in settings.variables.items()},
                    variables=settings.etl_variables,
                    aggregations=settings.rollup.aggregations,
                    window=settings.window,
                )
            rows = [
                {
                    "variable": e.variable,
                    "window": f"{e.timestamp:%Y-%m-%d %H:%M}",
                    "problem": e.problem,
                    "values": ", ".join(f"{k}={v}" for k, v in e.values.items()),
                }
                for e in report.examples
            ]
            problem = (
                f"{report.violations} inconsistent window(s), e.g. {rows[0]['variable']} at "
                f"{rows[0]['window']}: {rows[0]['problem']}"
                if report.violations
                else None
            )
            yield Outcome(
                turbine,
                problem,
                {
                    "windows_checked": report.windows,
                    "violations": report.violations,
                    "examples": _table(["variable", "window", "problem", "values"], rows),
                },
            )

    @check("No (signal, timestamp) of the turbine appears twice.")
    def no_duplicate_rows(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """No (turbine, signal, timestamp) appears twice in the target."""
        from windpipe.orchestration.quality import duplicate_rows

        first, last = checked_days(context)
        with etl.engine.connect() as conn:
            total, duplicates = duplicate_rows(conn, first, last)
        for turbine in turbines:
            mine = [d for d in duplicates if d.turbine == turbine]
            rows = [
                {"signal": d.signal, "window": f"{d.timestamp:%Y-%m-%d %H:%M}", "rows": str(d.rows)}
                for d in mine
            ]
            problem = (
                f"{len(mine)} duplicated (signal, timestamp), e.g. {rows[0]['signal']} at "
                f"{rows[0]['window']} x{rows[0]['rows']}"
                if mine
                else None
            )
            yield Outcome(
                turbine,
                problem,
                {
                    "rows_checked": total,
                    "duplicated_pairs": len(mine),
                    "examples": _table(["signal", "window", "rows"], rows),
                },
            )

    @check("The turbine's latest window is no older than WINDPIPE_FRESHNESS_LAG_MINUTES.")
    def live_edge_fresh(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """The latest window each turbine holds is recent (judged when the run loaded today)."""
        from windpipe.catalog import window_floor
        from windpipe.warehouse.reads import last_window

        last = checked_days(context)[1]
        now = datetime.now(UTC).replace(tzinfo=None)
        settings = etl.settings()
        lag = timedelta(minutes=settings.freshness_lag_minutes)
        warn = AssetCheckSeverity.WARN
        for turbine in turbines:
            if last < now.date():
                note = f"{turbine}: past days only; the live edge is judged today"
                yield Outcome(turbine, None, {}, warn, note=note)
                continue
            with etl.engine.connect() as conn:
                newest = last_window(conn, now.date(), settings.etl_signals, turbine=turbine)
            age = None if newest is None else now - (newest + settings.window)
            fresh = age is not None and age <= lag
            problem = (
                None
                if fresh
                else f"the latest window ({newest or 'none today'}) ends "
                f"{'-' if age is None else int(age.total_seconds() // 60)} min before now "
                f"({window_floor(now, settings.window):%H:%M} window open), more than "
                f"{settings.freshness_lag_minutes} min"
            )
            metadata = {
                "latest_window": str(newest) if newest else "none today",
                "age_minutes": -1 if age is None else round(age.total_seconds() / 60, 1),
                "lag_minutes": settings.freshness_lag_minutes,
            }
            yield Outcome(turbine, problem, metadata, warn)

    @check("Samples that were NaN or ±Infinity, left out of the aggregates (WARN when any).")
    def finite_samples(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """Per turbine and day loaded: the non-finite samples the transform dropped."""
        from windpipe.warehouse.reads import non_finite_counts

        first, last = checked_days(context)
        for turbine in turbines:
            with etl.engine.connect() as conn:
                counts = non_finite_counts(conn, first, last, turbine=turbine)
            bad = {day: n for day, (_, n) in sorted(counts.items()) if n}
            rows = [
                {"day": day.isoformat(), "samples": str(counts[day][0]), "non_finite": str(n)}
                for day, n in bad.items()
            ]
            problem = (
                f"{sum(bad.values())} NaN/±Inf sample value(s) left out on {len(bad)} day(s), "
                f"e.g. {rows[0]['non_finite']} on {rows[0]['day']}"
                if bad
                else None
            )
            metadata = {
                "non_finite": sum(bad.values()),
                "days": _table(["day", "samples", "non_finite"], rows),
            }
            yield Outcome(turbine, problem, metadata, AssetCheckSeverity.WARN)

    @check(
        "Windows left out for holding fewer samples than [etl] min_coverage of the expected "
        "count (WARN when any)."
    )
    def thin_windows(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """Per turbine and day loaded: the windows too thin to write."""
        from windpipe.warehouse.reads import thin_windows

        first, last = checked_days(context)
        settings = etl.settings()
        with etl.engine.connect() as conn:
            counts = thin_windows(conn, first, last, turbines)
        for turbine in turbines:
            mine = {d: n for (t, d), n in counts.items() if t == turbine}
            rows = [{"day": d.isoformat(), "thin_windows": str(n)} for d, n in mine.items()]
            problem = (
                f"{sum(mine.values())} window(s) held under {settings.etl_min_coverage:.0%} of "
                f"their expected samples and were not written, on {len(mine)} day(s), e.g. "
                f"{rows[0]['thin_windows']} on {rows[0]['day']}"
                if mine
                else None
            )
            metadata = {
                "thin_windows": sum(mine.values()),
                "min_coverage": settings.etl_min_coverage,
                "days": _table(["day", "thin_windows"], rows),
            }
            yield Outcome(turbine, problem, metadata, AssetCheckSeverity.WARN)

    @check(
        "The source still holds what each day was aggregated from (its fingerprint); a change "
        "since (late or corrected data) WARNs until the change sensor reloads it."
    )
    def source_unchanged(
        context: AssetCheckExecutionContext, etl: EtlResource, turbines: list[str]
    ) -> Iterator[Outcome]:
        """Per turbine: the days whose source fingerprint moved since they were loaded."""
        from windpipe.catalog import EMPTY_FINGERPRINT
        from windpipe.warehouse.reads import loaded_fingerprints

        first, last = checked_days(context)
        with etl.session(turbines) as session, session.engine.connect() as conn:
            source = session.client.fingerprints(first, last, turbines)
            loaded = loaded_fingerprints(conn, first, last)
        for turbine in turbines:
            moved = sorted(
                day
                for (t, day), (held, _) in loaded.items()
                if t == turbine and source.get((t, day), EMPTY_FINGERPRINT) != held
            )
            problem = (
                f"the source changed since {len(moved)} day(s) were loaded: "
                + ", ".join(d.isoformat() for d in moved[:10])
                if moved
                else None
            )
            metadata = {
                "days_changed": len(moved),
                "days": ", ".join(d.isoformat() for d in moved) or "none",
            }
            yield Outcome(turbine, problem, metadata, AssetCheckSeverity.WARN)

    return [
        windows_complete,
        aggregates_consistent,
        no_duplicate_rows,
        live_edge_fresh,
        finite_samples,
        source_unchanged,
    ]


asset_checks = build_checks(TURBINE_KEYS)
