"""Fixtures for the Dagster tests: the definitions, resources on the session's databases and API."""

import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from dagster import AssetCheckEvaluation, DagsterInstance
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

from windpipe.orchestration.defs.checks import asset_checks
from windpipe.orchestration.defs.resources import EtlResource
from windpipe.postgres import ensure_database, make_engine
from windpipe.warehouse.store import ensure_schema as ensure_target_schema

defs = _definitions.defs


@pytest.fixture(scope="session")
def etl_target(target_engine: Engine) -> Engine:
    """The session's target database with its schema."""
    ensure_target_schema(target_engine)
    return target_engine


@pytest.fixture(scope="session")
def resources(live_api: LiveApi, target_url: URL, etl_target: Engine) -> dict[str, object]:
    """The ETL resource, on the live test API and the session's target database."""
    return {"etl": etl_resource(live_api.url, target_url)}


def etl_resource(api_url: str, target: URL | str, **options: Any) -> EtlResource:
    """The ETL resource on ``api_url`` and the ``target`` database, with default options."""
    url = target if isinstance(target, str) else target.render_as_string(hide_password=False)
    config: dict[str, Any] = {"api_timeout_seconds": "30", "retries": 1, **options}
    return EtlResource(api_url=api_url, target_db_url=url, **config)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """A throw-away in-memory Dagster instance."""
    with DagsterInstance.ephemeral() as inst:
        yield inst


def run_checks(
    resources: dict[str, object], partition_key: str, instance: DagsterInstance | None = None
) -> dict[str, AssetCheckEvaluation]:
    """Run only the three asset checks of the ETL job for a partition; evaluations by name."""
    job = defs.resolve_job_def("windpipe_etl")
    checks = job.get_subset(
        asset_selection=set(),
        asset_check_selection={key for c in asset_checks for key in c.check_keys},
    )
    result = checks.execute_in_process(
        partition_key=partition_key, resources=resources, instance=instance
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def empty_target(target_url: URL) -> Iterator[URL]:
    """A target database of its own, empty, dropped afterwards."""
    name = f"windpipe_target_{uuid.uuid4().hex[:8]}"
    ensure_database(target_url, name)
    url = target_url.set(database=name)
    engine = make_engine(url)
    ensure_target_schema(engine)
    engine.dispose()
    yield url
    conninfo = target_url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
