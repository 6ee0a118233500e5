"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from windpipe import __version__
from windpipe.api.reader import SourceReader
from windpipe.api.routes import router
from windpipe.errors import QueryError, SourceUnavailableError
from windpipe.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, source_conninfo: str | None = None) -> FastAPI:
    """Build the API; ``source_conninfo`` (a libpq URI) defaults to the configured source DB."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        conninfo = source_conninfo
        if conninfo is None:
            from windpipe.postgres import database_url, libpq_conninfo

            conninfo = libpq_conninfo(database_url(settings, "source"))
        app.state.reader = SourceReader(conninfo)
        yield
        app.state.reader.close()

    app = FastAPI(
        title="windpipe connector API",
        version=__version__,
        summary="Read wind-turbine SCADA samples from the source database.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(router)

    @app.exception_handler(QueryError)
    async def _query_error(_: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(SourceUnavailableError)
    async def _unavailable(_: Request, exc: SourceUnavailableError) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the source database does not answer: {exc}"}, status_code=503
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "query")
            parts.append(
                f"{where}: {err.get('msg')}"
                + (f" (got {err['input']!r})" if "input" in err else "")
            )
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    return app
