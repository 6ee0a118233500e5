"""The ETL job: the turbines' aggregates (and their checks) for a partition or a range of them."""

from typing import TYPE_CHECKING

from dagster import (
    AssetsDefinition,
    AssetSelection,
    define_asset_job,
    in_process_executor,
)

if TYPE_CHECKING:  # Dagster does not export the type of define_asset_job's result
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from windpipe.orchestration.defs.assets import aggregates_10min
from windpipe.orchestration.defs.partitions import daily_partitions
from windpipe.orchestration.instance import ETL_RUN_TAG


def build_job(aggregates: AssetsDefinition) -> "UnresolvedAssetJobDefinition":
    """The job over every turbine's asset of ``aggregates``."""
    return define_asset_job(
        name="windpipe_etl",
        description="Load the 10-minute aggregates of a UTC day (or a range of days) of every "
        "turbine (or those selected) and check them.",
        selection=AssetSelection.assets(aggregates),
        partitions_def=daily_partitions,
        # One process per run: the assets and their checks are small, a process per step would
        # triple the run's start-up cost; turbines share the run's requests instead.
        executor_def=in_process_executor,
        tags={ETL_RUN_TAG: "target"},
    )


etl_job = build_job(aggregates_10min)
