"""The asset: a UTC day's 10-minute aggregates in the target database."""

from typing import TYPE_CHECKING

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Backoff,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from windpipe.orchestration.defs.partitions import daily_partitions, partition_days
from windpipe.orchestration.defs.resources import EtlOptions, SourceApi, TargetDatabase

if TYPE_CHECKING:
    from windpipe.etl.pipeline import DayResult


@asset(
    partitions_def=daily_partitions,
    # A backfill or catch-up of many days is one run: the ETL handles a range as cheaply as a day.
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=RetryPolicy(
        max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
    ),
    group_name="windpipe",
    kinds={"python", "postgres"},
    tags={"layer": "aggregates"},
)
def aggregates_10min(
    context: AssetExecutionContext,
    source_api: SourceApi,
    target_db: TargetDatabase,
    etl_options: EtlOptions,
) -> MaterializeResult:
    """10-minute mean/min/max/std of each turbine's signals per UTC day, in the target database."""
    import polars as pl

    from windpipe.etl.pipeline import run_range
    from windpipe.etl.store import aggregates_frame
    from windpipe.orchestration.reporting import chart_markdown, day_figures, preview_rows

    first, last = partition_days(context.partition_time_window)
    settings = etl_options.settings()
    variables, aggregations = settings.etl_variables, settings.etl_aggregations
    turbines = [t.id for t in settings.fleet]

    def log_day(result: "DayResult") -> None:
        context.log.info(
            f"{result.day}: {result.rows_read:,} samples -> {result.windows} windows, "
            f"{result.rows_written:,} rows, coverage {result.coverage:.1%}, {result.seconds:.2f} s"
        )

    with source_api.client() as client:
        results = run_range(
            first,
            last,
            client=client,
            engine=target_db.engine,
            variables=variables,
            aggregations=aggregations,
            turbines=turbines,
            window=settings.window,
            on_day=log_day,
        )
    signals = settings.etl_signals
    with target_db.engine.connect() as conn:  # the preview shows the fleet's first turbine
        frame = aggregates_frame(conn, first, last, signals, turbine=turbines[0])
    schema = TableSchema(
        columns=[TableColumn("window", "string")] + [TableColumn(s, "float") for s in signals]
    )
    for result in results:
        day_frame = frame.filter(pl.col("timestamp").dt.date() == result.day)
        figures = day_figures(result)
        context.add_asset_metadata(
            {
                **figures,
                "coverage_pct": MetadataValue.float(figures["coverage_pct"]),
                "duration_s": MetadataValue.float(figures["duration_s"]),
                "dagster/row_count": result.rows_written,
                "preview": MetadataValue.table(
                    [TableRecord(row) for row in preview_rows(day_frame, signals)], schema=schema
                ),
                "chart": MetadataValue.md(chart_markdown(day_frame, variables)),
            },
            partition_key=result.day.isoformat(),
        )
    return MaterializeResult()
