"""One way to build what the ETL runs with: settings -> API client + target engine.

The CLI and the Dagster resources both build their session here, so they cannot drift.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Self

import httpx
from sqlalchemy import Engine

from windpipe.catalog import DEFAULT_TURBINE_ID, WINDOW, Rollup
from windpipe.errors import ConfigError
from windpipe.etl.changes import Stale, find_stale
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import CLOSE_MARGIN, DayResult, run_range
from windpipe.settings import Settings


@dataclass
class EtlSession:
    """An API client, a target engine and what to compute (``rollup``: each variable's kind and
    aggregations); close it (or use ``with``)."""

    client: ApiClient
    engine: Engine
    rollup: Rollup
    turbines: list[str] = field(default_factory=lambda: [DEFAULT_TURBINE_ID])
    window: timedelta = WINDOW
    close_margin: timedelta = CLOSE_MARGIN

    def _options(self, on_day: Callable[[DayResult], None] | None) -> dict[str, Any]:
        """What the daily and the bulk path both take from the session."""
        return {
            "client": self.client,
            "engine": self.engine,
            "rollup": self.rollup,
            "turbines": self.turbines,
            "window": self.window,
            "on_day": on_day,
            "close_margin": self.close_margin,
        }

    def run(
        self, first: date, last: date, *, on_day: Callable[[DayResult], None] | None = None
    ) -> list[DayResult]:
        """Run the pipeline over ``[first, last]`` for this session's turbines and signals."""
        return run_range(first, last, **self._options(on_day))

    def backfill(
        self,
        first: date,
        last: date,
        *,
        on_day: Callable[[DayResult], None] | None = None,
        bulk: bool = True,
    ) -> list[DayResult]:
        """Run ``[first, last]``: whole closed months by the bulk path (``etl.backfill``), the
        other days (or all of them, without ``bulk``) by the daily path."""
        from windpipe.etl.backfill import run_backfill

        return run_backfill(first, last, **self._options(on_day), bulk=bulk)

    def stale(self, first: date, last: date, *, now: datetime) -> list[Stale]:
        """The loaded (turbine, day)s from ``first`` to ``last`` whose source changed since, or
        whose live-edge windows have closed since (``etl.changes.find_stale``)."""
        return find_stale(
            self.client,
            self.engine,
            self.turbines,
            first,
            last,
            now=now,
            close_margin=self.close_margin,
            window=self.window,
        )

    @property
    def variables(self) -> list[str]:
        """The source variables this session reads."""
        return self.rollup.variables

    @property
    def signals(self) -> list[str]:
        """The target signals this session writes."""
        return self.rollup.signals

    def close(self) -> None:
        """Close the API connection and the target pool."""
        self.client.close()
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def api_client(settings: Settings, *, retries: int = 4) -> ApiClient:
    """The API client of the configuration; it sends ``WINDPIPE_API_KEY`` when one is set."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    hooks: dict[str, list[Callable[..., Any]]] = {}
    if key:
        authorization = f"Bearer {key}"

        def authorize(request: httpx.Request) -> None:
            request.headers["Authorization"] = authorization

        hooks["request"] = [authorize]
    return ApiClient(
        settings.base_api_url,
        timeout=settings.api_timeout_seconds,
        retries=retries,
        event_hooks=hooks or None,
    )


def target_engine(settings: Settings) -> Engine:
    """The target engine of the configuration (the pipeline migrates its schema when behind)."""
    from windpipe.postgres import database_url, make_engine

    return make_engine(database_url(settings, "target"))


def chosen_turbines(
    settings: Settings, turbines: Sequence[str] | None = None, *, held: Sequence[str] = ()
) -> list[str]:
    """``turbines`` (default: the whole fleet), each checked against the fleet: the configured
    one, or without ``[[turbines]]`` the turbines the source holds (``held``)."""
    fleet = [t.id for t in settings.fleet_of(held)]
    if not turbines:
        return fleet
    unknown = [t for t in turbines if t not in fleet]
    if unknown:
        raise ConfigError(
            f"unknown turbine{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"known: {', '.join(fleet)}"
        )
    return list(dict.fromkeys(turbines))


def open_session(settings: Settings, turbines: Sequence[str] | None = None) -> EtlSession:
    """An ETL session on the configured API and target, for ``turbines`` (default: the fleet;
    without ``[[turbines]]``, every turbine the source holds, asked of the API)."""
    client = api_client(settings)
    try:
        held = [] if settings.turbines_declared else client.turbines()
        chosen = chosen_turbines(settings, turbines, held=held)
    except BaseException:
        client.close()
        raise
    return session_of(settings, client=client, engine=target_engine(settings), turbines=chosen)


def session_of(
    settings: Settings, *, client: ApiClient, engine: Engine, turbines: Sequence[str]
) -> EtlSession:
    """The session of the configuration on ``client`` and ``engine``, for ``turbines``: what the
    CLI (``open_session``) and the Dagster resource both run with."""
    return EtlSession(
        client=client,
        engine=engine,
        rollup=settings.rollup,
        turbines=list(turbines),
        window=settings.window,
        close_margin=settings.close_margin,
    )
