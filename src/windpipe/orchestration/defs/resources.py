"""Resources: the connector API (the only door to the source) and the target database."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from windpipe.settings import AGGREGATIONS, SOURCE_VARIABLES, ConfigError

# The ETL and database libraries load when a run or a sensor uses them, not when the webserver or
# the daemon load the definitions.
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from windpipe.etl.extract import ApiClient


class SourceApi(ConfigurableResource):
    """The connector API that serves the source samples (``WINDPIPE_API_URL``)."""

    base_url: str = Field(description="Base URL of the API, e.g. http://127.0.0.1:8000.")
    # A string because Dagster's EnvVar only yields str (or int); parsed by ``timeout``.
    timeout_seconds: str = Field(default="60", description="Read timeout of one request, seconds.")
    retries: int = Field(default=4, description="Retries of a failed request, with backoff.")

    @property
    def timeout(self) -> float:
        """The read timeout as a number of seconds."""
        try:
            value = float(self.timeout_seconds)
        except ValueError:
            value = -1.0
        if not 0 < value <= 3600:
            raise ConfigError(
                f"WINDPIPE_API_TIMEOUT_SECONDS: {self.timeout_seconds!r} is not a number of "
                "seconds in (0, 3600]"
            )
        return value

    @contextmanager
    def client(self, *, retries: int | None = None) -> Iterator["ApiClient"]:
        """An API client for the duration of the block."""
        from windpipe.etl.extract import ApiClient

        with ApiClient(
            self.base_url,
            timeout=self.timeout,
            retries=self.retries if retries is None else retries,
        ) as client:
            yield client


class TargetDatabase(ConfigurableResource):
    """The target PostgreSQL database (``WINDPIPE_TARGET_DB_URL``, a SQLAlchemy URL)."""

    url: str = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db.")
    _engine: Any = PrivateAttr(default=None)  # sqlalchemy.Engine, imported lazily

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Open the connection pool for one run or one sensor evaluation."""
        from windpipe.postgres import make_engine

        self._engine = make_engine(self.url)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """Close the connection pool."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> "Engine":
        """The SQLAlchemy engine (created on first use outside a run)."""
        if self._engine is None:
            from windpipe.postgres import make_engine

            self._engine = make_engine(self.url)
        return self._engine


def _csv(value: str, accepted: tuple[str, ...], variable: str) -> list[str]:
    items = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [item for item in items if item not in accepted]
    if unknown or not items:
        raise ConfigError(
            f"{variable}: unknown value(s) {unknown or items}; accepted: {', '.join(accepted)}"
        )
    return list(dict.fromkeys(items))


class EtlOptions(ConfigurableResource):
    """What the ETL computes: ``WINDPIPE_ETL_VARIABLES`` x ``WINDPIPE_ETL_AGGREGATIONS``."""

    variables: str = Field(default="wind_speed,power", description="Comma-separated variables.")
    aggregations: str = Field(
        default="mean,min,max,std", description="Comma-separated aggregations per window."
    )

    @property
    def variable_list(self) -> list[str]:
        """The variables, validated."""
        return _csv(self.variables, SOURCE_VARIABLES, "WINDPIPE_ETL_VARIABLES")

    @property
    def aggregation_list(self) -> list[str]:
        """The aggregations, validated."""
        return _csv(self.aggregations, AGGREGATIONS, "WINDPIPE_ETL_AGGREGATIONS")

    @property
    def signals(self) -> list[str]:
        """The target signal names, ``<variable>_<aggregation>``."""
        return [f"{v}_{a}" for v in self.variable_list for a in self.aggregation_list]
