"""Fixtures for the Dagster tests: the definitions, resources on the session's databases and API."""

import warnings
from collections.abc import Iterator

import pytest
from dagster import DagsterInstance
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from tests.conftest import LiveApi

# Dagster flags beta parameters we use on purpose (``backfill_policy``) when the definitions are
# imported; import them once here, with those warnings silenced, so tests can import them freely.
with warnings.catch_warnings():
    from dagster import BetaWarning, PreviewWarning

    warnings.simplefilter("ignore", BetaWarning)
    warnings.simplefilter("ignore", PreviewWarning)
    from windpipe.orchestration import definitions as _definitions

from windpipe.etl.load import create_target_schema
from windpipe.orchestration.defs.resources import EtlOptions, SourceApi, TargetDatabase

defs = _definitions.defs


@pytest.fixture(scope="session")
def etl_target(target_engine: Engine) -> Engine:
    """The session's target database with its schema."""
    create_target_schema(target_engine)
    return target_engine


@pytest.fixture(scope="session")
def resources(live_api: LiveApi, target_url: URL, etl_target: Engine) -> dict[str, object]:
    """The three resources, on the live test API and the session's target database."""
    return {
        "source_api": SourceApi(base_url=live_api.url, timeout_seconds="30", retries=1),
        "target_db": TargetDatabase(url=target_url.render_as_string(hide_password=False)),
        "etl_options": EtlOptions(),
    }


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """A throw-away in-memory Dagster instance."""
    with DagsterInstance.ephemeral() as inst:
        yield inst
