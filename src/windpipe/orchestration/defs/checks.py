"""Asset checks on the days each run loaded: window counts, consistent aggregates, no duplicates.

Each check covers the run's partition range (a catch-up run checks all its days at once) and lists
the offending days and windows in its metadata; a failed check shows red (ERROR) or yellow (WARN)
on the asset in the UI.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    TableColumn,
    TableMetadataValue,
    TableRecord,
    TableSchema,
    asset_check,
)

from windpipe.orchestration.defs.assets import aggregates_10min
from windpipe.orchestration.defs.partitions import partition_days
from windpipe.orchestration.defs.resources import EtlOptions, SourceApi, TargetDatabase

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


@asset_check(asset=aggregates_10min)
def windows_complete(
    context: AssetCheckExecutionContext,
    source_api: SourceApi,
    target_db: TargetDatabase,
    etl_options: EtlOptions,
) -> AssetCheckResult:
    """Each turbine's full days have 144 windows per signal; source gaps WARN, losses fail."""
    from windpipe.catalog import day_bounds
    from windpipe.orchestration.quality import check_windows

    first, last = checked_days(context)
    settings = etl_options.settings()
    turbines = [t.id for t in settings.fleet]
    with source_api.client() as client:

        def fetch_day(day: date) -> "pl.DataFrame":
            start, end = day_bounds(day)
            return client.fetch_frame(start, end, settings.etl_variables, turbines)

        with target_db.engine.connect() as conn:
            report = check_windows(
                conn,
                first,
                last,
                variables=settings.etl_variables,
                aggregations=settings.etl_aggregations,
                fetch_day=fetch_day,
                now=datetime.now(UTC).replace(tzinfo=None),
                turbines=turbines,
                window=settings.window,
            )
    rows = [
        {
            "turbine": f.turbine,
            "day": f.day.isoformat(),
            "signal": f.signal,
            "windows": str(f.windows),
            "source_windows": str(f.source_windows),
            "issue": "source gap" if f.explained else "target disagrees with source",
            "windows_without_samples": f.missing,
        }
        for f in report.findings[:100]
    ]
    metadata: dict[str, Any] = {
        "days_checked": len(report.days),
        "full_days": report.full_days,
        "complete_days": report.complete_days,
        "days_with_source_gaps": len({f.day for f in report.gaps}),
        "mismatches": len(report.mismatches),
        "findings": _table(
            [
                "turbine",
                "day",
                "signal",
                "windows",
                "source_windows",
                "issue",
                "windows_without_samples",
            ],
            rows,
        ),
    }
    if report.mismatches:
        bad = report.mismatches[0]
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"{len(report.mismatches)} (turbine, day, signal) disagree with the "
            f"source, e.g. {bad.turbine} {bad.signal} on {bad.day}: {bad.windows} windows, "
            f"source has {bad.source_windows}",
            metadata=metadata,
        )
    if report.gaps:
        days = sorted({f.day.isoformat() for f in report.gaps})
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description=f"source gaps: fewer than a full day of windows on "
            f"{', '.join(days[:5])}{' ...' if len(days) > 5 else ''} (see findings)",
            metadata=metadata,
        )
    return AssetCheckResult(passed=True, metadata=metadata)


@asset_check(asset=aggregates_10min)
def aggregates_consistent(
    context: AssetCheckExecutionContext, target_db: TargetDatabase, etl_options: EtlOptions
) -> AssetCheckResult:
    """In every window min <= mean <= max, std >= 0, values in the signal's physical range, and
    windows on their boundaries."""
    from windpipe.orchestration.quality import inconsistent_windows

    first, last = checked_days(context)
    settings = etl_options.settings()
    with target_db.engine.connect() as conn:
        report = inconsistent_windows(
            conn,
            first,
            last,
            variables=settings.etl_variables,
            aggregations=settings.etl_aggregations,
            ranges={n: (v.low, v.high) for n, v in settings.variables.items()},
            window=settings.window,
        )
    rows = [
        {
            "turbine": e.turbine,
            "variable": e.variable,
            "window": f"{e.timestamp:%Y-%m-%d %H:%M}",
            "problem": e.problem,
            "values": ", ".join(f"{k}={v}" for k, v in e.values.items()),
        }
        for e in report.examples
    ]
    return AssetCheckResult(
        passed=report.violations == 0,
        description=None
        if report.violations == 0
        else f"{report.violations} inconsistent window(s), e.g. {rows[0]['turbine']} "
        f"{rows[0]['variable']} at {rows[0]['window']}: {rows[0]['problem']}",
        metadata={
            "windows_checked": report.windows,
            "violations": report.violations,
            "examples": _table(["turbine", "variable", "window", "problem", "values"], rows),
        },
    )


@asset_check(asset=aggregates_10min)
def no_duplicate_rows(
    context: AssetCheckExecutionContext, target_db: TargetDatabase
) -> AssetCheckResult:
    """No (turbine, signal, timestamp) appears twice in the target."""
    from windpipe.orchestration.quality import duplicate_rows

    first, last = checked_days(context)
    with target_db.engine.connect() as conn:
        total, duplicates = duplicate_rows(conn, first, last)
    rows = [
        {
            "turbine": d.turbine,
            "signal": d.signal,
            "window": f"{d.timestamp:%Y-%m-%d %H:%M}",
            "rows": str(d.rows),
        }
        for d in duplicates
    ]
    return AssetCheckResult(
        passed=not duplicates,
        description=None
        if not duplicates
        else f"{len(duplicates)} duplicated (turbine, signal, timestamp), e.g. "
        f"{rows[0]['turbine']} {rows[0]['signal']} at {rows[0]['window']} x{rows[0]['rows']}",
        metadata={
            "rows_checked": total,
            "duplicated_pairs": len(duplicates),
            "examples": _table(["turbine", "signal", "window", "rows"], rows),
        },
    )


asset_checks = [windows_complete, aggregates_consistent, no_duplicate_rows]
