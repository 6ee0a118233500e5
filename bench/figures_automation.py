"""The figures' automation condition beside Dagster's eager() semantics, in one run.

    uv run python bench/figures_automation.py              # 10 turbines x 365 days
    uv run python bench/figures_automation.py --days 60    # a quicker look

``FIGURES_CONDITION`` resets its trigger on a request only and reads each dep's materialization
time (``any_deps_match(newly_updated())``), so an update reported while a day's figures run is
not lost. The condition it replaced, ``eager()`` on every partition (its own materialization
counts as having handled an update), is evaluated beside it on the same instance and the same
events, each with its own cursor: a Dagster instance on SQLite as under ``windpipe up``, with
``--days`` of aggregates, events and figures materialized for ``--turbines`` (reported runless:
no database, no API). Per tick: the evaluation's time (median of ``--runs`` on copies of the
cursor) and the partitions each requests. The ticks:

- **first**: the condition's first evaluation over a materialized history;
- **quiet**: nothing new since;
- **events, N days**: an import touching N days of every turbine reported (at most 100 updated
  partitions of an asset read each one's time; more are stamped with the tick's);
- **during a run**: figures requested, then events of those days reported while the run goes
  on, then the run's materializations: the tick after it.
"""

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

warnings.simplefilter("ignore")
TODAY = datetime.now(UTC).date()


def main() -> None:
    """Materialize a history, then evaluate both conditions on the same ticks, side by side."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--turbines", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    first = TODAY - timedelta(days=args.days - 1)
    os.environ["WINDPIPE_PARTITIONS_START"] = first.isoformat()  # before the partitions load

    from dagster import (
        AssetKey,
        AssetMaterialization,
        AutomationCondition,
        DagsterInstance,
        Definitions,
        evaluate_automation_conditions,
    )

    from windpipe.orchestration.defs.assets import build_aggregates
    from windpipe.orchestration.defs.events import EVENTS, build_event_specs
    from windpipe.orchestration.defs.figures import FIGURES_CONDITION, build_figures
    from windpipe.orchestration.defs.resources import EtlResource
    from windpipe.orchestration.fleet import asset_path, events_path, flags_path, kpis_path

    eager = (
        AutomationCondition.eager()
        .without(AutomationCondition.in_latest_time_window())
        .replace("any_deps_missing", AutomationCondition.any_deps_missing().ignore(EVENTS))
        .with_label("eager (every partition; events may be unreported)")
    )
    turbines = [f"WTG{i:02d}" for i in range(1, args.turbines + 1)]
    days = [(first + timedelta(days=i)).isoformat() for i in range(args.days)]
    kpis, flags = build_figures(turbines)
    resources = {"etl": EtlResource(api_url="http://127.0.0.1:9", target_db_url="unused")}

    def definitions(condition: AutomationCondition) -> Definitions:
        def swap(spec: Any) -> Any:
            return spec.replace_attributes(automation_condition=condition)

        return Definitions(
            assets=[
                build_aggregates(turbines),
                *build_event_specs(turbines),
                kpis.map_asset_specs(swap),
                flags.map_asset_specs(swap),
            ],
            resources=resources,
        )

    conditions = {
        "eager() on every partition (before)": definitions(eager),
        "FIGURES_CONDITION (reset by a request)": definitions(FIGURES_CONDITION),
    }
    figure_keys = [AssetKey(p(t)) for t in turbines for p in (kpis_path, flags_path)]

    def report(paths: list[Callable[[str], list[str]]], on: list[str]) -> float:
        began = time.perf_counter()
        for turbine in turbines:
            for path in paths:
                for day in on:
                    instance.report_runless_asset_event(
                        AssetMaterialization(AssetKey(path(turbine)), partition=day)
                    )
        return time.perf_counter() - began

    with tempfile.TemporaryDirectory(prefix="windpipe-bench-figures-") as home:
        instance = DagsterInstance.local_temp(home)
        seconds = report([asset_path, events_path, kpis_path, flags_path], days)
        print(
            f"reported {len(turbines)} turbines x {len(days)} days x 4 assets materialized "
            f"in {seconds:.1f} s",
            flush=True,
        )
        cursors: dict[str, Any] = dict.fromkeys(conditions)
        rows: list[tuple[str, str, float, int]] = []

        def tick(label: str) -> dict[str, int]:
            asked = {}
            for name, defs in conditions.items():
                times, result = [], None
                for _ in range(args.runs):  # each on the same cursor: the same tick again
                    began = time.perf_counter()
                    result = evaluate_automation_conditions(
                        defs=defs,
                        instance=instance,
                        cursor=cursors[name],
                        evaluation_time=datetime.now(UTC),
                    )
                    times.append(time.perf_counter() - began)
                assert result is not None
                cursors[name] = result.cursor
                count = sum(len(result.get_requested_partitions(k)) for k in figure_keys)
                rows.append((label, name, statistics.median(times) * 1000, count))
                asked[name] = count
            return asked

        tick("first")
        tick("quiet")
        for span in (5, 30):
            report([events_path], days[-span:])
            tick(f"events, {span} days")
        # During a run: both asked for the last 5 days' figures above; their events change,
        # then the runs (which had read the events before) finish.
        late = days[-5:]
        report([events_path], late)
        report([kpis_path, flags_path], late)
        tick("during a run")
        tick("quiet after")

    print(
        f"\n== {len(turbines)} turbines x {len(days)} days ({len(figure_keys)} assets x "
        f"{len(days)} partitions); medians of {args.runs} evaluations"
    )
    print(f"{'tick':<22}{'condition':<42}{'ms':>9}  partitions requested")
    for label, name, ms, count in rows:
        print(f"{label:<22}{name:<42}{ms:>9.1f}  {count:,}")
    by = {(label, name): (ms, count) for label, name, ms, count in rows}
    names = list(conditions)
    print("\nratio (FIGURES_CONDITION / eager) of a tick's time:")
    for label in dict.fromkeys(r[0] for r in rows):
        before, after = by[(label, names[0])][0], by[(label, names[1])][0]
        print(f"  {label:<20} {after / before:.2f}x")


if __name__ == "__main__":
    main()
