"""The FastAPI application factory."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from windpipe import __version__
from windpipe.api.dashboard import CurveCache
from windpipe.api.pool import ReadOnlyPool, close_target, init_target
from windpipe.api.routes import ROUTERS, TAGS
from windpipe.api.schemas import MOMENT_PATTERN, shown
from windpipe.api.security import GuardMiddleware, parse_entries
from windpipe.api.ui import mount_static as mount_ui_static
from windpipe.api.ui import router as ui_router
from windpipe.errors import (
    ApiBusyError,
    QueryError,
    SourceQueryError,
    SourceSchemaError,
    SourceUnavailableError,
    TargetUnavailableError,
)
from windpipe.settings import Settings, get_settings
from windpipe.source.contract import describe

_log = logging.getLogger("windpipe.api")
#: Where the docs pages' scripts and styles are served from (a pinned package ships them).
STATIC_DOCS = "/static-docs"
#: Seconds a client is told to wait before retrying a busy API.
RETRY_AFTER = "1"


def docs_assets() -> Path:
    """The directory of Swagger UI's and ReDoc's files, as the pinned fastapi-offline ships them."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def create_app(
    settings: Settings | None = None,
    *,
    source_conninfo: str | None = None,
    target_conninfo: str | None = None,
) -> FastAPI:
    """Build the API; ``source_conninfo`` and ``target_conninfo`` (libpq URIs) default to the
    API's read-only URLs of the source and the target (the target's resolved on first use)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        conninfo = source_conninfo
        if conninfo is None:
            from windpipe.postgres import api_database_url, libpq_conninfo

            conninfo = libpq_conninfo(api_database_url(settings))
        app.state.reader = ReadOnlyPool(
            conninfo,
            size=settings.api_pool_size,
            acquire_timeout=settings.api_pool_timeout_seconds,
            statement_timeout=settings.api_statement_timeout_seconds,
            variables=settings.variables.values(),
        )
        await _check_contract_at_start(app.state.reader)
        yield
        app.state.reader.close()
        close_target(app)

    app = FastAPI(
        title="windpipe connector API",
        version=__version__,
        summary="Read wind-turbine SCADA samples from the source database.",
        lifespan=lifespan,
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.api_keys = parse_entries(settings.api_key_hashes)
    for router in ROUTERS:  # the data routes refuse a parameter they do not take
        app.include_router(router, dependencies=[Depends(known_parameters)])
    # The dashboard (left out of the OpenAPI document): pages drawn from the target's aggregates.
    init_target(app, target_conninfo)
    app.state.curve_cache = CurveCache()
    app.include_router(ui_router)
    mount_ui_static(app)
    app.add_middleware(
        GuardMiddleware,
        allowed_hosts=settings.allowed_hosts,
        max_concurrency=settings.api_max_concurrency,
    )
    _add_docs(app)
    if not app.state.api_keys:
        _document_without_keys(app)

    @app.exception_handler(QueryError)
    async def _query_error(_: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    app.add_exception_handler(SourceUnavailableError, _unanswered("source"))
    app.add_exception_handler(TargetUnavailableError, _unanswered("target"))

    @app.exception_handler(SourceSchemaError)
    async def _schema(_: Request, exc: SourceSchemaError) -> JSONResponse:
        # 503, not 500: nothing is wrong with the API, the source must be fixed by its operator,
        # and the API serves again as soon as it is (no restart). No Retry-After: a second later
        # is no better; clients that retry 5xx with backoff still do.
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(SourceQueryError)
    async def _refused(request: Request, exc: SourceQueryError) -> JSONResponse:
        _log.warning(
            "%s %s: the source database refused the query: %s",
            request.method,
            request.url.path,
            exc,
        )
        reader: ReadOnlyPool = request.app.state.reader
        try:
            found = await reader.contract()  # the schema changed since the last check?
        except SourceUnavailableError:
            found = []
        detail = describe(found) if found else f"the source database refused the query: {exc}"
        return JSONResponse({"detail": detail}, status_code=503)

    @app.exception_handler(ApiBusyError)
    async def _busy(_: Request, exc: ApiBusyError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=503, headers={"Retry-After": RETRY_AFTER}
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "query")
            if err.get("type") == "missing":  # pydantic's "Field required (got None)" reads as code
                parts.append(f"{where} is required")
                continue
            if err.get("ctx", {}).get("pattern") == MOMENT_PATTERN:  # not the regex itself
                parts.append(
                    f"{where}: {shown(err.get('input'))} is not a date or time; use YYYY-MM-DD or "
                    "YYYY-MM-DDTHH:MM[:SS], with Z or +HH:MM for an offset (UTC without)"
                )
                continue
            parts.append(
                f"{where}: {err.get('msg')}"
                + (f" (got {shown(err['input'])})" if "input" in err else "")
            )
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    return app


#: Per route, the query parameters it takes (its dependencies' included).
_ACCEPTED: dict[int, frozenset[str]] = {}


def _query_names(dependant: Any) -> Iterator[str]:
    """The query parameters of a route's dependant and of every dependency under it."""
    yield from (param.alias for param in dependant.query_params)
    for sub in dependant.dependencies:
        yield from _query_names(sub)


async def known_parameters(request: Request) -> None:
    """Refuse a query parameter the route does not take: a typo (``turbine=`` for
    ``turbines=``) would otherwise be ignored and answer every turbine."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    accepted = _ACCEPTED.get(id(route))
    if accepted is None:
        accepted = _ACCEPTED[id(route)] = frozenset(_query_names(dependant))
    unknown = sorted(set(request.query_params) - accepted)
    if unknown:
        raise QueryError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"{getattr(route, 'path', 'this route')} takes: {', '.join(sorted(accepted)) or 'none'}"
        )


def _unanswered(database: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """The handler of "the ``database`` database does not answer": a 503 with Retry-After."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        # The driver's message names hosts, ports and socket paths: the log keeps it, not the body.
        _log.warning(
            "%s %s: the %s database does not answer: %s",
            request.method,
            request.url.path,
            database,
            exc,
        )
        return JSONResponse(
            {"detail": f"the {database} database does not answer; retry later"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER},
        )

    return handler


async def _check_contract_at_start(reader: ReadOnlyPool) -> None:
    """Check the source table's schema contract once before serving, and log what breaks it.

    The API starts either way: ``/health`` and the data routes say what is wrong, and serve
    again as soon as the table is fixed, with no restart.
    """
    try:
        await reader.contract()  # logs the breaches, if any
    except SourceUnavailableError as exc:
        _log.warning("the source database does not answer at start-up: %s", exc)


def _document_without_keys(app: FastAPI) -> None:
    """Leave the security schemes out of the OpenAPI document when no key is asked for."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            spec.get("components", {}).pop("securitySchemes", None)
            for operations in spec.get("paths", {}).values():
                for operation in operations.values():
                    operation.pop("security", None)
                    for code in ("401", "403"):
                        operation.get("responses", {}).pop(code, None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _below_root(request: Request, **paths: str) -> dict[str, Any]:
    """``paths`` below the root path the app is served under (a proxy's prefix), by name."""
    root = request.scope.get("root_path", "")
    return {name: f"{root}{path}" for name, path in paths.items()}


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, with every file served by the API itself."""
    app.mount(STATIC_DOCS, StaticFiles(directory=docs_assets()), name="static-docs")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            title=f"{app.title} - Swagger UI",
            **_below_root(
                request,
                openapi_url=openapi_url,
                oauth2_redirect_url=oauth2_redirect,
                swagger_js_url=f"{STATIC_DOCS}/swagger-ui-bundle.js",
                swagger_css_url=f"{STATIC_DOCS}/swagger-ui.css",
                swagger_favicon_url=f"{STATIC_DOCS}/favicon.png",
            ),
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            title=f"{app.title} - ReDoc",
            with_google_fonts=False,
            **_below_root(
                request,
                openapi_url=openapi_url,
                redoc_js_url=f"{STATIC_DOCS}/redoc.standalone.js",
                redoc_favicon_url=f"{STATIC_DOCS}/favicon.png",
            ),
        )
