"""Resources: the connector API (the only door to the source) and the target database."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from windpipe.settings import Settings, load_settings

# The ETL and database libraries load when a run or a sensor uses them, not when the webserver or
# the daemon load the definitions.
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from windpipe.etl.extract import ApiClient


class SourceApi(ConfigurableResource):
    """The connector API that serves the source samples (``WINDPIPE_API_URL``)."""

    base_url: str = Field(description="Base URL of the API, e.g. http://127.0.0.1:8000.")
    # A string because Dagster's EnvVar only yields str (or int); validated by ``settings``.
    timeout_seconds: str = Field(default="60", description="Read timeout of one request, seconds.")
    retries: int = Field(default=4, description="Retries of a failed request, with backoff.")
    api_key: str = Field(
        default="", description="Key sent to the API (WINDPIPE_API_KEY); empty: none."
    )

    def settings(self) -> Settings:
        """The configuration with this resource's values, validated like every other setting."""
        return load_settings(
            api_url=self.base_url,
            api_timeout_seconds=self.timeout_seconds,
            api_key=self.api_key or None,
        )

    @contextmanager
    def client(self, *, retries: int | None = None) -> Iterator["ApiClient"]:
        """An API client for the duration of the block."""
        from windpipe.etl.session import api_client

        with api_client(
            self.settings(), retries=self.retries if retries is None else retries
        ) as client:
            yield client


class TargetDatabase(ConfigurableResource):
    """The target PostgreSQL database (``WINDPIPE_TARGET_DB_URL``, a SQLAlchemy URL)."""

    url: str = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db.")
    _engine: Any = PrivateAttr(default=None)  # sqlalchemy.Engine, imported lazily

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Open the connection pool for one run or one sensor evaluation."""
        self._engine = self._open()

    def _open(self) -> "Engine":
        from windpipe.etl.session import target_engine

        return target_engine(load_settings(target_db_url=self.url))

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """Close the connection pool."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> "Engine":
        """The SQLAlchemy engine (created on first use outside a run)."""
        if self._engine is None:
            self._engine = self._open()
        return self._engine


class EtlOptions(ConfigurableResource):
    """What the ETL computes: ``WINDPIPE_ETL_VARIABLES`` x ``WINDPIPE_ETL_AGGREGATIONS``."""

    variables: str = Field(default="wind_speed,power", description="Comma-separated variables.")
    aggregations: str = Field(
        default="mean,min,max,std", description="Comma-separated aggregations per window."
    )

    def settings(self) -> Settings:
        """The configuration with these options, validated like every other setting."""
        return load_settings(etl_variables=self.variables, etl_aggregations=self.aggregations)

    @property
    def variable_list(self) -> list[str]:
        """The variables, validated."""
        return self.settings().etl_variables

    @property
    def aggregation_list(self) -> list[str]:
        """The aggregations, validated."""
        return self.settings().etl_aggregations

    @property
    def signals(self) -> list[str]:
        """The target signal names, ``<variable>_<aggregation>``."""
        return self.settings().etl_signals

    @property
    def turbines(self) -> list[str]:
        """The fleet's turbine ids (the configuration file's, or the default turbine)."""
        return [t.id for t in self.settings().fleet]
