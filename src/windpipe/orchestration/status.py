"""What a running Dagster webserver says about windpipe's assets, over its GraphQL endpoint.

No Dagster import: ``windpipe up`` and the tests ask a webserver in another process.
"""

from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

import httpx

from windpipe.catalog import DEFAULT_TURBINE_ID, days_between
from windpipe.orchestration.fleet import asset_path

_PARTITIONS_QUERY = """
query ($keys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    partitionStats { numFailed numMaterializing }
    assetPartitionStatuses {
      ... on TimePartitionStatuses { ranges { startKey endKey status } }
    }
  }
}
"""


class PartitionStatus(NamedTuple):
    """The daily partitions Dagster reports materialized for every turbine, and how many failed
    (over all turbines)."""

    materialized: set[date]
    failed: int


def server_ready(dagster_url: str, *, timeout: float = 2.0) -> bool:
    """Whether the webserver at ``dagster_url`` answers (its ``/server_info``)."""
    try:
        return httpx.get(f"{dagster_url}/server_info", timeout=timeout).status_code < 500
    except httpx.HTTPError:
        return False


def materialized_days(
    dagster_url: str,
    *,
    turbines: Sequence[str] = (DEFAULT_TURBINE_ID,),
    timeout: float = 5.0,
) -> PartitionStatus:
    """Days every turbine's asset has materialized, and the failed partitions of all of them.

    Raises ``httpx.HTTPError`` when the webserver does not answer (it may still be starting).
    """
    per_turbine, failed = materialized_by_turbine(dagster_url, turbines=turbines, timeout=timeout)
    days = list(per_turbine.values())
    return PartitionStatus(set.intersection(*days) if days else set(), failed)


def materialized_by_turbine(
    dagster_url: str,
    *,
    turbines: Sequence[str] = (DEFAULT_TURBINE_ID,),
    timeout: float = 5.0,
) -> tuple[dict[str, set[date]], int]:
    """Each turbine's materialized days, and the failed partitions of all of them.

    Raises ``httpx.HTTPError`` when the webserver does not answer (it may still be starting).
    """
    keys = {tuple(asset_path(t)): t for t in turbines}
    response = httpx.post(
        f"{dagster_url}/graphql",
        json={
            "query": _PARTITIONS_QUERY,
            "variables": {"keys": [{"path": list(k)} for k in keys]},
        },
        timeout=timeout,
    )
    response.raise_for_status()
    nodes = (response.json().get("data") or {}).get("assetNodes") or []
    per_turbine: dict[str, set[date]] = {t: set() for t in turbines}
    failed = 0
    for node in nodes:
        turbine = keys.get(tuple(node["assetKey"]["path"]))
        if turbine is None:
            continue
        failed += (node.get("partitionStats") or {}).get("numFailed", 0)
        for span in (node.get("assetPartitionStatuses") or {}).get("ranges", []):
            if span.get("status") != "MATERIALIZED":
                continue
            first, last = date.fromisoformat(span["startKey"]), date.fromisoformat(span["endKey"])
            per_turbine[turbine].update(days_between(first, last))
    return per_turbine, failed
