"""windpipe's Dagster code location: ``dagster-webserver -m windpipe.orchestration.definitions``.

Start it with ``windpipe dagster webserver`` / ``windpipe dagster daemon`` (or ``windpipe up``),
which set every ``WINDPIPE_*`` variable the resources read, with defaults applied.
"""

from dagster import Definitions, EnvVar

from windpipe.orchestration.defs.assets import aggregates_10min
from windpipe.orchestration.defs.checks import asset_checks
from windpipe.orchestration.defs.jobs import etl_job
from windpipe.orchestration.defs.resources import EtlOptions, SourceApi, TargetDatabase
from windpipe.orchestration.defs.schedules import schedules
from windpipe.orchestration.defs.sensors import sensors

defs = Definitions(
    assets=[aggregates_10min],
    asset_checks=asset_checks,
    jobs=[etl_job],
    schedules=schedules,
    sensors=sensors,
    resources={
        "source_api": SourceApi(
            base_url=EnvVar("WINDPIPE_API_URL"),
            timeout_seconds=EnvVar("WINDPIPE_API_TIMEOUT_SECONDS"),
            api_key=EnvVar("WINDPIPE_API_KEY"),
        ),
        "target_db": TargetDatabase(url=EnvVar("WINDPIPE_TARGET_DB_URL")),
        "etl_options": EtlOptions(
            variables=EnvVar("WINDPIPE_ETL_VARIABLES"),
            aggregations=EnvVar("WINDPIPE_ETL_AGGREGATIONS"),
        ),
    },
)
