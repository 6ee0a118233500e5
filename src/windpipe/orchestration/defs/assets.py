"""The assets: each turbine's 10-minute aggregates per UTC day, in the target database.

One asset per turbine of the configuration (``aggregates_10min/<turbine>``), all on the same daily
partitions, computed by one multi-asset: a run over a range of days and any subset of turbines is
one process running the ETL session (the CLI's) once, so the turbines' samples come in the same API
requests.
"""

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    Backoff,
    FreshnessPolicy,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset,
)

from windpipe.orchestration.defs.partitions import daily_partitions, partition_days
from windpipe.orchestration.defs.resources import EtlResource
from windpipe.orchestration.fleet import asset_path
from windpipe.orchestration.instance import (
    DATABASES_POOL,
    code_location_fleet,
    code_location_settings,
)

if TYPE_CHECKING:
    from windpipe.etl.pipeline import DayResult


def turbine_keys(turbines: Sequence[str]) -> dict[str, AssetKey]:
    """Each turbine's asset key, in fleet order."""
    return {t: AssetKey(asset_path(t)) for t in turbines}


def build_aggregates(
    turbines: Sequence[str], *, freshness_lag_minutes: int | None = None
) -> AssetsDefinition:
    """The multi-asset of the fleet ``turbines``: one asset each, computed together; each fails
    Dagster's freshness once not materialized for ``freshness_lag_minutes`` (default: the
    setting's)."""
    keys = turbine_keys(turbines)
    lag = (
        code_location_settings().freshness_lag_minutes
        if freshness_lag_minutes is None
        else freshness_lag_minutes
    )

    @multi_asset(
        specs=[
            AssetSpec(
                key,
                description=f"10-minute mean/min/max/std of turbine {turbine}'s signals per UTC "
                "day.",
                group_name="windpipe",
                kinds={"python", "postgres"},
                tags={"layer": "aggregates", "windpipe/turbine": key.path[-1]},
                metadata={"turbine": turbine},
                partitions_def=daily_partitions,
                # Dagster's own freshness (its daemon, the UI's asset health): a run of the
                # turbine within the lag, which the 10-minute refresh gives while it runs. It
                # judges when Dagster last materialized, not how old the data is: a stopped
                # feed still refreshes on time; the live_edge_fresh check judges the windows.
                freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(minutes=lag)),
            )
            for turbine, key in keys.items()
        ],
        name="aggregates_10min",
        partitions_def=daily_partitions,
        can_subset=True,
        # Reads the source through the API and writes the target: the instance bounds the runs
        # using them at once, however launched (WINDPIPE_DAGSTER_POOL_LIMIT).
        pool=DATABASES_POOL,
        # A backfill or catch-up of many days is one run: the ETL handles a range as cheaply as
        # a day, and every selected turbine in the same requests.
        backfill_policy=BackfillPolicy.single_run(),
        retry_policy=RetryPolicy(
            max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
        ),
    )
    def aggregates_10min(
        context: AssetExecutionContext, etl: EtlResource
    ) -> Iterator[MaterializeResult]:
        """Each selected turbine's 10-minute aggregates per UTC day, in the target database."""
        chosen = [t for t, key in keys.items() if key in context.selected_asset_keys]
        yield from _materialize(context, chosen, keys, etl)

    return aggregates_10min


def _materialize(
    context: AssetExecutionContext,
    turbines: list[str],
    keys: dict[str, AssetKey],
    etl: EtlResource,
) -> Iterator[MaterializeResult]:
    import polars as pl

    from windpipe.orchestration.reporting import chart_markdown, day_figures, preview_rows
    from windpipe.warehouse.reads import aggregates_frame

    first, last = partition_days(context.partition_time_window)
    settings = etl.settings()
    variables = settings.etl_variables

    def log_day(result: "DayResult") -> None:
        context.log.info(
            f"{result.day}: {result.turbines} turbine(s), {result.rows_read:,} samples -> "
            f"{result.windows} windows, {result.rows_written:,} rows, "
            f"coverage {result.coverage:.1%}, {result.seconds:.2f} s"
        )

    with etl.session(turbines) as session:
        results = session.run(first, last, on_day=log_day)
        signals = session.signals
    schema = TableSchema(
        columns=[TableColumn("window", "string")] + [TableColumn(s, "float") for s in signals]
    )
    with etl.engine.connect() as conn:
        frame = aggregates_frame(conn, first, last, signals)
    for turbine in turbines:
        key = keys[turbine]
        mine = frame.filter(pl.col("turbine") == turbine).drop("turbine")
        for result in results:
            day_frame = mine.filter(pl.col("timestamp").dt.date() == result.day)
            rows = day_frame.height
            read, coverage = result.by_turbine.get(turbine, (0, 0.0))
            figures = day_figures(result)
            context.add_asset_metadata(
                {
                    "rows_read": read,
                    "windows": day_frame["timestamp"].n_unique() if rows else 0,
                    "rows_written": rows,
                    "coverage_pct": MetadataValue.float(round(100.0 * coverage, 2)),
                    # The run's whole day (all its turbines in one transaction) took this long.
                    "duration_s": MetadataValue.float(figures["duration_s"]),
                    "dagster/row_count": rows,
                    "preview": MetadataValue.table(
                        [TableRecord(row) for row in preview_rows(day_frame, signals)],
                        schema=schema,
                    ),
                    "chart": MetadataValue.md(chart_markdown(day_frame, variables)),
                    # The API's dashboard for this turbine and day (WINDPIPE_API_URL: behind a
                    # proxy or in compose, the address the runs use, not always a browser's).
                    "dashboard": MetadataValue.url(
                        f"{settings.base_api_url}/ui/turbine/{quote(turbine)}"
                        f"?start={result.day.isoformat()}"
                        f"&end={(result.day + timedelta(days=1)).isoformat()}"
                    ),
                },
                asset_key=key,
                partition_key=result.day.isoformat(),
            )
        yield MaterializeResult(asset_key=key)


#: The fleet when the code location loaded; a turbine added to the file appears after a reload.
FLEET: list[str] = code_location_fleet()
TURBINE_KEYS = turbine_keys(FLEET)
aggregates_10min = build_aggregates(FLEET)
