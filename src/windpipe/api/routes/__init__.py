"""The API's routes, one module per resource; each module's router carries its OpenAPI tag."""

from typing import Any

from fastapi import APIRouter

from windpipe.api.routes import (
    aggregates,
    curves,
    events,
    fingerprints,
    flags,
    fleet,
    kpis,
    operations,
    samples,
)

#: The tags the OpenAPI document groups the operations by, in the order the docs show them.
TAGS: list[dict[str, Any]] = [
    {
        "name": "samples",
        "description": "The source's samples: streamed by time range, the variables served, "
        "and a fingerprint per turbine and UTC day that shows which days changed.",
    },
    {
        "name": "events",
        "description": "The turbines' events (stops, alarms, maintenance) overlapping a range.",
    },
    {
        "name": "aggregates",
        "description": "The target's 10-minute windows, streamed like the samples.",
    },
    {
        "name": "power curves",
        "description": "Each turbine's power curve, IEC 61400-12-1 style: density-normalised, "
        "0.5 m/s bins, from full-performance windows without quality flags.",
    },
    {
        "name": "flags",
        "description": "Quality flags of the windows (out of range, flatline, icing suspect, "
        "stopped with wind); the data itself is never deleted.",
    },
    {
        "name": "kpis",
        "description": "The farm's daily figures per turbine and for the farm: energy, capacity "
        "factor, time- and production-based availability (IEC 61400-26), lost production.",
    },
    {
        "name": "fleet",
        "description": "The turbines, configured or found in the source, and what it holds.",
    },
    {"name": "operations", "description": "Health of the API, its database and schema contract."},
]
#: Every router, in the order they are included.
ROUTERS: list[APIRouter] = [
    samples.router,
    fingerprints.router,
    events.router,
    aggregates.router,
    curves.router,
    flags.router,
    kpis.router,
    fleet.router,
    operations.router,
]
