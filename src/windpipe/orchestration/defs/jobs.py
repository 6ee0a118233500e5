"""The ETL job: the aggregates asset (and its checks) for a partition or a range of them."""

from dagster import AssetSelection, define_asset_job, in_process_executor

from windpipe.orchestration.defs.assets import aggregates_10min
from windpipe.orchestration.defs.partitions import daily_partitions
from windpipe.orchestration.instance import ETL_RUN_TAG

etl_job = define_asset_job(
    name="windpipe_etl",
    description="Load the 10-minute aggregates of a UTC day (or a range of days) and check them.",
    selection=AssetSelection.assets(aggregates_10min),
    partitions_def=daily_partitions,
    # One process per run: the asset and its checks are small, a process per step would triple
    # the run's start-up cost.
    executor_def=in_process_executor,
    tags={ETL_RUN_TAG: "target"},
)
