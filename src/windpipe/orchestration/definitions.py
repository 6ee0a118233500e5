"""windpipe's Dagster code location: ``dagster-webserver -m windpipe.orchestration.definitions``.

Start it with ``windpipe dagster webserver`` / ``windpipe dagster daemon`` (or ``windpipe up``),
which set every ``WINDPIPE_*`` variable the resources read, with defaults applied.
"""

from collections.abc import Sequence

from dagster import Definitions, EnvVar, in_process_executor

from windpipe.orchestration.defs.assets import FLEET, build_aggregates, turbine_keys
from windpipe.orchestration.defs.checks import build_checks
from windpipe.orchestration.defs.events import build_event_changes, build_event_specs, event_keys
from windpipe.orchestration.defs.figures import (
    build_automation_sensor,
    build_figure_checks,
    build_figures,
    figure_keys,
)
from windpipe.orchestration.defs.jobs import build_job
from windpipe.orchestration.defs.resources import EtlResource
from windpipe.orchestration.defs.schedules import build_schedules
from windpipe.orchestration.defs.sensors import build_catch_up, build_source_changes
from windpipe.orchestration.instance import code_location_settings


def build_definitions(turbines: Sequence[str]) -> Definitions:
    """windpipe's definitions for the fleet ``turbines``: one asset (and its checks) each, one
    job, the schedules, the catch-up and the change sensors over all of them; the turbines'
    events (external) with their sensor, and the daily figures and flags downstream."""
    settings = code_location_settings()
    keys = turbine_keys(turbines)
    aggregates = build_aggregates(turbines)
    job = build_job(aggregates)
    kpis, flags = build_figures(turbines, settings.availability.reference_days)
    return Definitions(
        assets=[aggregates, *build_event_specs(turbines), kpis, flags],
        asset_checks=[*build_checks(keys), *build_figure_checks(*figure_keys(turbines))],
        jobs=[job],
        schedules=build_schedules(job),
        sensors=[
            build_catch_up(keys, job),
            build_source_changes(
                keys,
                job,
                interval_seconds=settings.changes_interval_seconds,
                lookback_days=settings.changes_lookback_days,
            ),
            build_event_changes(event_keys(turbines)),
            build_automation_sensor([kpis, flags]),
        ],
        resources=RESOURCES,
        # The implicit job's (the automation sensor's runs, a materialization from the UI): one
        # process per run as windpipe_etl's, not one per asset and check on two cores.
        executor=in_process_executor,
    )


RESOURCES = {
    "etl": EtlResource(
        api_url=EnvVar("WINDPIPE_API_URL"),
        api_timeout_seconds=EnvVar("WINDPIPE_API_TIMEOUT_SECONDS"),
        api_key=EnvVar("WINDPIPE_API_KEY"),
        target_db_url=EnvVar("WINDPIPE_TARGET_DB_URL"),
        variables=EnvVar("WINDPIPE_ETL_VARIABLES"),
        aggregations=EnvVar("WINDPIPE_ETL_AGGREGATIONS"),
    ),
}
defs = build_definitions(FLEET)
