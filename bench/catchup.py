"""How long a catch-up run takes to start, by how many (turbine, day) partitions it covers.

    uv run python bench/catchup.py                  # 30x4, 100x1, 100x4, 365x1 (days x turbines)
    uv run python bench/catchup.py 30x4 1000x4      # any sizes

Dagster's run monitoring fails a run that has not started within 120 s (``start_timeout_seconds``)
and marks every partition it planned as failed. Each run here is the windpipe job over a range of
days and turbines (a single-run backfill, as the catch-up sensor requests), executed on a SQLite
instance in a temporary Dagster home (``windpipe up``'s storage), against an API that does not
answer, with retries off: the step starts, fails at once, and the run ends. Printed per size: the
seconds from the run's first event to its start (RUN_START) and to its step's start, the whole
run, and each start's ratio to the smallest size's. The catch-up's bounds
(``orchestration/catchup.py``) come from these figures.
"""

import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta

warnings.simplefilter("ignore")

from dagster import DagsterInstance, Definitions  # noqa: E402

from windpipe.orchestration.defs.assets import build_aggregates  # noqa: E402
from windpipe.orchestration.defs.jobs import build_job  # noqa: E402
from windpipe.orchestration.defs.resources import EtlOptions, SourceApi, TargetDatabase  # noqa: E402
from windpipe.orchestration.defs.sensors import range_request  # noqa: E402
from windpipe.testing import free_port  # noqa: E402

NO_RETRIES = {"execution": {"config": {"retries": {"disabled": {}}}}}


def start_seconds(days: int, turbines: int) -> tuple[float, float, float]:
    """(to RUN_START, to STEP_START, whole run) of one run over ``days`` x ``turbines``."""
    names = [f"T{i:02d}" for i in range(turbines)]
    aggregates = build_aggregates(names)
    closed = f"http://127.0.0.1:{free_port()}"
    resources = {
        "source_api": SourceApi(base_url=closed, retries=0),
        "target_db": TargetDatabase(url=f"postgresql+psycopg://x:y@127.0.0.1:{free_port()}/z"),
        "etl_options": EtlOptions(),
    }
    job = Definitions(
        assets=[aggregates], jobs=[build_job(aggregates)], resources=resources
    ).resolve_job_def("windpipe_etl")
    first = date(2014, 1, 1)
    request = range_request(first, first + timedelta(days=days - 1), now=datetime.now(UTC))
    with tempfile.TemporaryDirectory() as home, DagsterInstance.local_temp(home) as instance:
        began = time.perf_counter()
        result = job.execute_in_process(
            instance=instance, tags=request.tags, run_config=NO_RETRIES, raise_on_error=False
        )
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
    main(sys.argv[1:] or ["30x4", "100x1", "100x4", "365x1"])
