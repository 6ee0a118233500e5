"""The fleet as Dagster sees it: one partitioned asset per turbine, named from its id.

No Dagster import here: the status client and ``windpipe up`` name the assets without loading
Dagster. One asset per turbine (not a turbine x day ``MultiPartitionsDefinition``) because runs
over a range of days stay single runs (``BackfillPolicy.single_run``), which Dagster does not
offer for multi-dimensional partitions, and a run can still cover every turbine at once.
"""

import re
from collections.abc import Sequence

#: The first component of every turbine's asset key: ``aggregates_10min/<turbine>``.
ASSET_PREFIX = "aggregates_10min"


def asset_name(turbine: str) -> str:
    """The asset-key component of a turbine id (Dagster names take letters, digits and ``_``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", turbine)


def asset_path(turbine: str) -> list[str]:
    """The asset key path of a turbine's aggregates, e.g. ``["aggregates_10min", "WTG01"]``."""
    return [ASSET_PREFIX, asset_name(turbine)]


def turbine_of(path: Sequence[str], turbines: Sequence[str]) -> str:
    """The turbine (of ``turbines``) whose asset has this key path."""
    for turbine in turbines:
        if list(path) == asset_path(turbine):
            return turbine
    raise KeyError(f"no turbine of {list(turbines)} has the asset {'/'.join(path)}")


#: The first components of each turbine's daily figures and flags: ``kpis_daily/<turbine>``.
KPIS_PREFIX = "kpis_daily"
FLAGS_PREFIX = "flags_daily"


def kpis_path(turbine: str) -> list[str]:
    """The asset key path of a turbine's daily figures, e.g. ``["kpis_daily", "WTG01"]``."""
    return [KPIS_PREFIX, asset_name(turbine)]


def flags_path(turbine: str) -> list[str]:
    """The asset key path of a turbine's quality flags, e.g. ``["flags_daily", "WTG01"]``."""
    return [FLAGS_PREFIX, asset_name(turbine)]


#: The first component of each turbine's events (an external asset the ``event_changes``
#: sensor reports): ``turbine_events/<turbine>``.
EVENTS_PREFIX = "turbine_events"


def events_path(turbine: str) -> list[str]:
    """The asset key path of a turbine's events, e.g. ``["turbine_events", "WTG01"]``."""
    return [EVENTS_PREFIX, asset_name(turbine)]
