"""The one resource: the ETL session the CLI opens too, on the configured API and target."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from windpipe.settings import Settings, load_settings

# The ETL and database libraries load when a run or a sensor uses them, not when the webserver or
# the daemon load the definitions.
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from windpipe.etl.session import EtlSession


class EtlResource(ConfigurableResource):
    """The ETL session (``windpipe.etl.session``): the connector API (``WINDPIPE_API_URL``, the
    only door to the source), the target database (``WINDPIPE_TARGET_DB_URL``) and what the ETL
    computes (``WINDPIPE_ETL_VARIABLES`` x ``WINDPIPE_ETL_AGGREGATIONS``)."""

    api_url: str = Field(description="Base URL of the API, e.g. http://127.0.0.1:8000.")
    # Strings because Dagster's EnvVar only yields str (or int); validated by ``settings``.
    api_timeout_seconds: str = Field(
        default="60", description="Read timeout of one request, seconds."
    )
    api_key: str = Field(
        default="", description="Key sent to the API (WINDPIPE_API_KEY); empty: none."
    )
    retries: int = Field(default=4, description="Retries of a failed request, with backoff.")
    target_db_url: str = Field(
        description="SQLAlchemy URL of the target, e.g. postgresql+psycopg://user@host/db."
    )
    variables: str = Field(default="wind_speed,power", description="Comma-separated variables.")
    aggregations: str = Field(
        default="mean,min,max,std", description="Comma-separated aggregations per window."
    )
    _engine: Any = PrivateAttr(default=None)  # sqlalchemy.Engine, imported lazily

    def settings(self) -> Settings:
        """The configuration with this resource's values, validated like every other setting."""
        return load_settings(
            api_url=self.api_url,
            api_timeout_seconds=self.api_timeout_seconds,
            api_key=self.api_key or None,
            target_db_url=self.target_db_url,
            etl_variables=self.variables,
            etl_aggregations=self.aggregations,
        )

    @property
    def signals(self) -> list[str]:
        """The target signal names, ``<variable>_<aggregation>``."""
        return self.settings().etl_signals

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Open the target's connection pool for one run or one sensor evaluation."""
        self._engine = self._open()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """Close the target's connection pool."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _open(self) -> "Engine":
        from windpipe.etl.session import target_engine

        return target_engine(self.settings())

    @property
    def engine(self) -> "Engine":
        """The target's SQLAlchemy engine (created on first use outside a run)."""
        if self._engine is None:
            self._engine = self._open()
        return self._engine

    @contextmanager
    def session(
        self, turbines: Sequence[str], *, retries: int | None = None
    ) -> Iterator["EtlSession"]:
        """The ETL session for ``turbines`` for the duration of the block: the CLI's, built by
        the same function; the block's API client is closed after it, the pool after the run."""
        from windpipe.etl.session import api_client, session_of

        settings = self.settings()
        with api_client(settings, retries=self.retries if retries is None else retries) as client:
            yield session_of(settings, client=client, engine=self.engine, turbines=turbines)
