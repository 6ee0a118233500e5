"""How long a catch-up run takes to start, by how many (turbine, day) partitions it covers.

    uv run python bench/catchup.py                  # 30x4 ... 365x4 (days x turbines)
    uv run python bench/catchup.py 30x4 1000x4      # any sizes

Dagster's run monitoring fails a run that has not started within 120 s (``start_timeout_seconds``)
and marks every partition it planned as failed. Each run here is the windpipe job over a range of
days and turbines (a single-run backfill, as the catch-up sensor requests), executed on a SQLite
instance in a temporary Dagster home (``windpipe up``'s storage). What it measures is Dagster's
own cost per partition, so the asset is a stand-in with the windpipe asset's keys, partitions and
backfill policy that materializes at once. Printed per size: the seconds from the run's first
event to its start (RUN_START) and to its step's start, the whole run, and each start's ratio to
the smallest size's. The catch-up's bounds
(``orchestration/catchup.py``) come from these figures.
"""

import os
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta

warnings.simplefilter("ignore")
os.environ.setdefault("WINDPIPE_PARTITIONS_START", "2014-01-01")  # before the partitions load

from dagster import (  # noqa: E402
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    DagsterInstance,
    Definitions,
    MaterializeResult,
    multi_asset,
)

from windpipe.orchestration.defs.assets import turbine_keys  # noqa: E402
from windpipe.orchestration.defs.jobs import build_job  # noqa: E402
from windpipe.orchestration.defs.partitions import daily_partitions  # noqa: E402
from windpipe.orchestration.defs.sensors import range_request  # noqa: E402

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def stand_in(turbines: list[str]) -> AssetsDefinition:
    """The windpipe multi-asset's shape (keys, partitions, subsetting, single-run backfills),
    materializing every selected turbine at once."""
    keys = turbine_keys(turbines)

    @multi_asset(
        specs=[AssetSpec(key, partitions_def=daily_partitions) for key in keys.values()],
        name="aggregates_10min",
        partitions_def=daily_partitions,
        can_subset=True,
        backfill_policy=BackfillPolicy.single_run(),
    )
    def aggregates_10min(context: AssetExecutionContext):  # type: ignore[no-untyped-def]
        for key in context.selected_asset_keys:
            yield MaterializeResult(asset_key=key)

    return aggregates_10min


def start_seconds(days: int, turbines: int) -> tuple[float, float, float]:
    """(to RUN_START, to STEP_START, whole run) of one run over ``days`` x ``turbines``."""
    aggregates = stand_in([f"T{i:02d}" for i in range(turbines)])
    job = Definitions(assets=[aggregates], jobs=[build_job(aggregates)]).resolve_job_def(
        "windpipe_etl"
    )
    first = date(2014, 1, 1)
    request = range_request(first, first + timedelta(days=days - 1), now=datetime.now(UTC))
    with tempfile.TemporaryDirectory() as home, DagsterInstance.local_temp(home) as instance:
        began = time.perf_counter()
        result = job.execute_in_process(instance=instance, tags=request.tags, run_config=QUIET)
        whole = time.perf_counter() - began
        stamps: dict[str, float] = {}
        for record in instance.get_records_for_run(result.run_id, limit=1_000_000).records:
            entry = record.event_log_entry
            kind = entry.dagster_event.event_type_value if entry.dagster_event else "log"
            stamps.setdefault(kind, entry.timestamp)
            stamps.setdefault("first", entry.timestamp)
            stamps["first"] = min(stamps["first"], entry.timestamp)
    return (
        stamps.get("PIPELINE_START", stamps["first"]) - stamps["first"],
        stamps.get("STEP_START", stamps["first"]) - stamps["first"],
        whole,
    )


def main(sizes: list[str]) -> None:
    print("days x turbines  partitions  to RUN_START  to STEP_START  whole run  start ratio")
    base: float | None = None
    start_seconds(1, 1)  # the first run pays for imports and the storage's creation
    for size in sizes:
        days, turbines = (int(n) for n in size.split("x"))
        start, step, whole = start_seconds(days, turbines)
        base = base or max(start, 1e-3)
        print(
            f"{days:>5} x {turbines:<8} {days * turbines:>10,}  {start:>10.1f} s  "
            f"{step:>11.1f} s  {whole:>7.1f} s  {start / base:>10.1f}x",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["30x4", "100x1", "100x4", "365x1", "365x4"])
