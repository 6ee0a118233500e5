"""The Dagster instance and process environment that ``windpipe dagster`` and ``windpipe up`` use,
and where the daily partitions start.

No Dagster import here: these helpers run before the Dagster processes start.
"""

import logging
import os
import time
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path

from windpipe.settings import Settings

#: The module holding ``defs``, loaded by the webserver, the daemon and each run.
DEFINITIONS_MODULE = "windpipe.orchestration.definitions"
#: First day of the daily partitions (YYYY-MM-DD), ``Settings.partitions_start``.
PARTITIONS_START_ENV = "WINDPIPE_PARTITIONS_START"
#: Used when the start is neither set nor known from the source data.
DEFAULT_PARTITIONS_START = date(2024, 1, 1)
#: File in the Dagster home that remembers the first day of source data, once looked up.
FIRST_DAY_FILE = "windpipe-first-day"
#: The source's turbines the code location last heard of (without [[turbines]]), one a line.
FLEET_FILE = "windpipe-fleet"
#: How long loading the code location may wait for the API to report the first day of data.
LOOKUP_SECONDS = 20.0

_log = logging.getLogger(__name__)
#: Run tag on every ETL run; the instance lets one such run go at a time.
ETL_RUN_TAG = "windpipe/etl"
#: Dagster's concurrency pool of every step that reads the source (through the API) or writes the
#: target: the aggregates and their checks, in whatever job they run (a backfill launched from the
#: UI runs them outside ``windpipe_etl`` and its tag).
DATABASES_POOL = "windpipe_databases"

#: The first line of the instance file windpipe writes; while it is there, windpipe keeps the file
#: in step with the settings (remove it to keep edits of your own).
MANAGED_HEADER = "# Dagster instance of windpipe, written from WINDPIPE_DAGSTER_* settings."


def instance_yaml(*, max_runs: int = 2, etl_runs: int = 1, pool_limit: int = 1) -> str:
    """The laptop instance's ``dagster.yaml``: ``max_runs`` runs at once, ``etl_runs`` ETL, and
    ``pool_limit`` runs using the databases (``DATABASES_POOL``), however they were launched."""
    return f"""\
{MANAGED_HEADER}
# Remove the line above to keep edits of your own; windpipe then never rewrites this file.
# Storage: SQLite files in this directory (Dagster's default for a local instance).

# Runs wait in a queue that the daemon looks at every second (default 5 s). Two runs at a time
# fit a laptop (WINDPIPE_DAGSTER_MAX_CONCURRENT_RUNS), and ETL runs go one by one
# (WINDPIPE_DAGSTER_ETL_RUNS): a run covers every turbine, so on two cores one run at a time is
# fastest; loads lock per (turbine, day), so more ETL runs may overlap where there are cores.
run_queue:
  dequeue_interval_seconds: 1
concurrency:
  runs:
    max_concurrent_runs: {max_runs}
    tag_concurrency_limits:
      - key: "{ETL_RUN_TAG}"
        limit: {etl_runs}
  # Steps that use the databases name the pool {DATABASES_POOL} (WINDPIPE_DAGSTER_POOL_LIMIT):
  # also a backfill launched from the UI, which does not carry the tag above. Enforced per run,
  # at the queue: a run waits there, not started and holding a process, for a free slot.
  pools:
    default_limit: {pool_limit}
    granularity: run

# Notice runs whose process died (e.g. the machine slept) instead of leaving them "started".
run_monitoring:
  enabled: true
  start_timeout_seconds: 120
  poll_interval_seconds: 30

# The catch-up sensor ticks every 30 s: keep a day of skipped ticks, a week of the others.
retention:
  sensor:
    purge_after_days:
      skipped: 1
      failure: 7
      success: 7
  schedule:
    purge_after_days: 30

telemetry:
  enabled: false
"""


#: The instance file with the default settings.
INSTANCE_YAML = instance_yaml()


def dagster_home(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """``$DAGSTER_HOME`` when set (containers set it), else ``$WINDPIPE_DATA_DIR/dagster``."""
    env = os.environ if environ is None else environ
    configured = env.get("DAGSTER_HOME")
    home = Path(configured) if configured else settings.data_dir / "dagster"
    return home.expanduser().resolve()


def ensure_instance(home: Path, settings: Settings | None = None) -> Path:
    """Create ``home`` and a laptop-sized ``dagster.yaml`` in it unless one exists; return it.

    A file windpipe wrote (its first line is ``MANAGED_HEADER``) is rewritten when the settings'
    run limits changed; any other file is kept as it is.
    """
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = (
        INSTANCE_YAML
        if settings is None
        else instance_yaml(
            max_runs=settings.dagster_max_concurrent_runs,
            etl_runs=settings.dagster_etl_runs,
            pool_limit=settings.dagster_pool_limit,
        )
    )
    try:
        current: str | None = config.read_text()
    except FileNotFoundError:
        current = None
    managed = current is None or current.startswith(MANAGED_HEADER)
    if managed and current != wanted:
        tmp = config.with_suffix(f".yaml.{os.getpid()}.tmp")
        tmp.write_text(wanted)
        tmp.replace(config)
    return config


def initialize_storage(home: Path) -> bool:
    """Create the instance's storage once, and its databases' pool; return whether this call
    created the storage.

    The webserver and the daemon (and their code servers) each create missing SQLite storage when
    they open the instance; started at the same moment on a fresh home, they stamp its schema twice
    and then refuse to load ("more than one head"). A file lock makes the first one do it alone.

    The pool ``DATABASES_POOL`` gets its limit (the instance's ``pools.default_limit``) here, before
    any run is queued: Dagster's queue creates a pool's limit only when it first sees a run in it,
    and does not hold back the runs of that first pass (measured: five queued runs, limit 1, five
    started). Later changes of the default reach the pool at the queue's next pass.
    """
    import fcntl
    import warnings

    marker = home / ".storage-initialized"
    pooled = home / ".pool-initialized"
    if marker.exists() and pooled.exists():
        return False
    with (home / ".storage.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and pooled.exists():
            return False
        created = not marker.exists()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from dagster import DagsterInstance

            with DagsterInstance.from_config(str(home)) as instance:
                instance.get_runs(limit=1)
                if instance.global_op_concurrency_default_limit is not None:
                    # A dagster.yaml of the user's without pools: their limits, left alone.
                    storage = instance.event_log_storage
                    storage.initialize_concurrency_limit_to_default(DATABASES_POOL)
        if created:
            marker.write_text("Dagster storage created by windpipe; delete to redo.\n")
        pooled.write_text(f"Dagster pool {DATABASES_POOL} initialized by windpipe.\n")
    return created


def partitions_start(
    settings: Settings, *, home: Path | None, wait_seconds: float = LOOKUP_SECONDS
) -> date:
    """The first day of the daily partitions: the setting, else the first day of source data.

    The first day of data is remembered in ``home`` (the Dagster home), so the webserver, the
    daemon and the runs agree on it and later loads need no API; it is asked of the API (for at
    most ``wait_seconds``) only when nothing is remembered. Without a home (a test's ephemeral
    instance) or an answer, the start is ``DEFAULT_PARTITIONS_START``.
    """
    if settings.partitions_start is not None:
        return settings.partitions_start
    if home is None:
        return DEFAULT_PARTITIONS_START
    memo = home / FIRST_DAY_FILE
    remembered = remembered_first_day(memo)
    if remembered is not None:
        return remembered
    first = first_source_day(settings.base_api_url, wait_seconds=wait_seconds)
    if first is None:
        _log.warning(
            "the API at %s did not report a first day of data within %.0f s; the daily partitions "
            "start at %s (set %s to choose)",
            settings.base_api_url,
            wait_seconds,
            DEFAULT_PARTITIONS_START,
            PARTITIONS_START_ENV,
        )
        return DEFAULT_PARTITIONS_START
    remember_first_day(memo, first)
    return first


def remembered_first_day(memo: Path) -> date | None:
    """The first day of data written in ``memo``; None when there is none (or it is unreadable)."""
    try:
        return date.fromisoformat(memo.read_text().strip())
    except (OSError, ValueError):
        return None


def remember_first_day(memo: Path, first: date) -> None:
    """Write ``first`` into ``memo`` atomically; a home that cannot be written just forgets it."""
    tmp = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(f"{first.isoformat()}\n")
        tmp.replace(memo)
    except OSError as exc:
        _log.warning("could not remember the first day of data in %s: %s", memo, exc)
        tmp.unlink(missing_ok=True)


def first_source_day(api_url: str, *, wait_seconds: float) -> date | None:
    """The first UTC day of source data, asked of the API until ``wait_seconds`` have passed.

    None when the API does not answer in time, or answers that the source is empty.
    """
    from windpipe.etl.extract import ApiClient

    deadline = time.monotonic() + wait_seconds
    with ApiClient(api_url, timeout=min(5.0, max(wait_seconds, 0.1)), retries=0) as client:
        while True:
            try:
                coverage = client.coverage()
            except Exception:  # whatever the API answers, the definitions must still load
                if time.monotonic() + 1.0 > deadline:
                    return None
                time.sleep(1.0)
                continue
            first = coverage.first if coverage.rows else None
            return None if first is None else first.date()


def source_turbines(api_url: str, *, wait_seconds: float) -> list[str] | None:
    """The turbines the source holds, asked of the API until ``wait_seconds`` have passed; None
    when the API does not answer in time."""
    from windpipe.etl.extract import ApiClient

    deadline = time.monotonic() + wait_seconds
    with ApiClient(api_url, timeout=min(5.0, max(wait_seconds, 0.1)), retries=0) as client:
        while True:
            try:
                return client.turbines()
            except Exception:  # whatever the API answers, the definitions must still load
                if time.monotonic() + 1.0 > deadline:
                    return None
                time.sleep(1.0)


def code_location_fleet(environ: Mapping[str, str] | None = None) -> list[str]:
    """The turbine ids the code location defines assets for: the configured fleet, or without
    ``[[turbines]]`` the turbines the source holds (asked of the API when there is a Dagster
    home; a turbine that appears later needs a reload of the code location)."""
    env = os.environ if environ is None else environ
    settings = code_location_settings()
    if settings.turbines_declared or not env.get("DAGSTER_HOME"):
        return [t.id for t in settings.fleet]
    memo = Path(env["DAGSTER_HOME"]) / FLEET_FILE
    held = source_turbines(settings.base_api_url, wait_seconds=LOOKUP_SECONDS)
    if held:
        try:  # the webserver, the daemon and the runs agree even while the API is away
            memo.write_text("".join(f"{t}\n" for t in held))
        except OSError as exc:
            _log.warning("could not remember the fleet in %s: %s", memo, exc)
    elif memo.is_file():
        held = [line for line in memo.read_text().split() if line]
    if held is None:
        _log.warning(
            "the API at %s did not list the source's turbines within %.0f s; the assets cover "
            "the default fleet (declare [[turbines]] in windpipe.toml to choose)",
            settings.base_api_url,
            LOOKUP_SECONDS,
        )
    return [t.id for t in settings.fleet_of(held or [])]


@lru_cache
def code_location_settings() -> Settings:
    """The settings the code location loads with (the fleet, the partitions' start ...)."""
    from windpipe.settings import load_settings

    return load_settings()


def code_location_partitions_start(environ: Mapping[str, str] | None = None) -> date:
    """``partitions_start`` as the code location sees it: settings and ``$DAGSTER_HOME``."""
    env = os.environ if environ is None else environ
    home = env.get("DAGSTER_HOME")
    settings = code_location_settings() if environ is None else _fresh_settings()
    return partitions_start(settings, home=Path(home) if home else None)


def _fresh_settings() -> Settings:
    from windpipe.settings import load_settings

    return load_settings()


def dagster_environment(
    settings: Settings,
    *,
    target_url: str,
    home: Path,
    first_day: date | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the Dagster processes: ``base`` plus every variable the definitions read.

    The resources read ``WINDPIPE_*`` through Dagster's ``EnvVar``; writing the values in effect
    (defaults applied, the embedded database resolved) means the runs see what ``windpipe`` sees.
    """
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "WINDPIPE_API_URL": settings.base_api_url,
            "WINDPIPE_API_TIMEOUT_SECONDS": repr(float(settings.api_timeout_seconds)),
            "WINDPIPE_API_KEY": settings.api_key.get_secret_value() if settings.api_key else "",
            "WINDPIPE_TARGET_DB_URL": target_url,
            "WINDPIPE_ETL_VARIABLES": ",".join(settings.etl_variables),
            "WINDPIPE_ETL_AGGREGATIONS": ",".join(settings.etl_aggregations),
        }
    )
    if settings.config is not None:  # the fleet's file, wherever the processes start
        env["WINDPIPE_CONFIG"] = str(settings.config)
    if settings.partitions_start is not None:  # e.g. from .env, which the runs may not read
        env[PARTITIONS_START_ENV] = settings.partitions_start.isoformat()
    elif first_day is not None and not env.get(PARTITIONS_START_ENV):
        env[PARTITIONS_START_ENV] = first_day.isoformat()
    return env
