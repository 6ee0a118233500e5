"""Operating the API: ``GET /health`` for probes, and the landing page at ``/``."""

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from windpipe.api.deps import ReaderDep
from windpipe.api.schemas import Health
from windpipe.errors import SourceUnavailableError
from windpipe.source.contract import describe

router = APIRouter(tags=["operations"])

LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>windpipe</title></head>
<body>
<h1>windpipe</h1>
<p>Wind-turbine SCADA data: the source's samples and the target's 10-minute aggregates.</p>
<ul>
<li><a href="ui">Dashboard</a>: the farm, each turbine, the data's quality (<code>/ui</code>)</li>
<li><a href="docs">API docs</a> (Swagger UI, <code>/docs</code>;
 also <a href="redoc">ReDoc</a>)</li>
<li><a href="openapi.json">OpenAPI document</a></li>
</ul>
</body></html>
"""


@router.get("/", include_in_schema=False)
def root() -> HTMLResponse:
    """A landing page: the dashboard and the interactive docs."""
    return HTMLResponse(LANDING)


@router.head("/health", include_in_schema=False)  # load balancers and probes send HEAD
@router.get(
    "/health",
    summary="Check the source database and its schema contract",
    responses={503: {"model": Health}},
)
async def get_health(reader: ReaderDep) -> JSONResponse:
    """200 when the source database answers and its table keeps the schema contract (the columns
    windpipe reads, of the types it reads them as); 503 when not, with the ``reason``: a missing
    or retyped column is named with the type found and expected. Asked anew on every call (one
    catalog query on a connection of its own); no key needed."""
    try:
        found = await reader.contract()
    except SourceUnavailableError:
        body = Health(
            status="unavailable",
            database="unavailable",
            contract="unknown",
            reason="the source database does not answer",
        )
    else:
        if found:
            reason = describe(found)
            body = Health(status="unavailable", database="ok", contract="broken", reason=reason)
        else:
            body = Health(status="ok", database="ok", contract="ok")
    status = 200 if body.status == "ok" else 503
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)
