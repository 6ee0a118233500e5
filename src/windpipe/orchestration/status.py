"""What a running Dagster webserver says about windpipe's asset, over its GraphQL endpoint.

No Dagster import: ``windpipe up`` and the tests ask a webserver in another process.
"""

from datetime import date
from typing import NamedTuple

import httpx

from windpipe.catalog import days_between

#: The key of the partitioned asset (``orchestration.defs.assets.aggregates_10min``).
ASSET_KEY = "aggregates_10min"

_PARTITIONS_QUERY = """
query ($path: [String!]!) {
  assetNodes(assetKeys: [{path: $path}]) {
    partitionStats { numFailed numMaterializing }
    assetPartitionStatuses {
      ... on TimePartitionStatuses { ranges { startKey endKey status } }
    }
  }
}
"""


class PartitionStatus(NamedTuple):
    """The daily partitions Dagster reports materialized, and how many failed."""

    materialized: set[date]
    failed: int


def server_ready(dagster_url: str, *, timeout: float = 2.0) -> bool:
    """Whether the webserver at ``dagster_url`` answers (its ``/server_info``)."""
    try:
        return httpx.get(f"{dagster_url}/server_info", timeout=timeout).status_code < 500
    except httpx.HTTPError:
        return False


def materialized_days(
    dagster_url: str, *, asset_key: str = ASSET_KEY, timeout: float = 5.0
) -> PartitionStatus:
    """Partitions of the asset that Dagster reports materialized, and the failed count.

    Raises ``httpx.HTTPError`` when the webserver does not answer (it may still be starting).
    """
    response = httpx.post(
        f"{dagster_url}/graphql",
        json={"query": _PARTITIONS_QUERY, "variables": {"path": [asset_key]}},
        timeout=timeout,
    )
    response.raise_for_status()
    nodes = (response.json().get("data") or {}).get("assetNodes") or []
    days: set[date] = set()
    failed = 0
    for node in nodes:
        failed += (node.get("partitionStats") or {}).get("numFailed", 0)
        for span in (node.get("assetPartitionStatuses") or {}).get("ranges", []):
            if span.get("status") != "MATERIALIZED":
                continue
            first, last = date.fromisoformat(span["startKey"]), date.fromisoformat(span["endKey"])
            days.update(days_between(first, last))
    return PartitionStatus(days, failed)
