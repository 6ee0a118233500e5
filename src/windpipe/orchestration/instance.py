"""The Dagster instance and process environment that ``windpipe dagster`` and ``windpipe up`` use.

No Dagster import here: these helpers run before the Dagster processes start.
"""

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from windpipe.settings import Settings

#: The module holding ``defs``, loaded by the webserver, the daemon and each run.
DEFINITIONS_MODULE = "windpipe.orchestration.definitions"
#: First day of the daily partitions (YYYY-MM-DD): the first day of source data.
PARTITIONS_START_ENV = "WINDPIPE_PARTITIONS_START"
#: Used when PARTITIONS_START_ENV is unset (e.g. a bare ``dagster dev``).
DEFAULT_PARTITIONS_START = date(2024, 1, 1)
#: Run tag on every ETL run; the instance lets one such run go at a time.
ETL_RUN_TAG = "windpipe/etl"

INSTANCE_YAML = f"""\
# Dagster instance of windpipe, written by `windpipe dagster` when missing; edit freely.
# Storage: SQLite files in this directory (Dagster's default for a local instance).

# Runs wait in a queue that the daemon looks at every second (default 5 s). Two runs at a time
# fit a laptop, and ETL runs go one by one (they write the same tables; a catch-up run and a
# 10-minute refresh need not overlap).
run_queue:
  dequeue_interval_seconds: 1
concurrency:
  runs:
    max_concurrent_runs: 2
    tag_concurrency_limits:
      - key: "{ETL_RUN_TAG}"
        limit: 1

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


def dagster_home(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """``$DAGSTER_HOME`` when set (containers set it), else ``$WINDPIPE_DATA_DIR/dagster``."""
    env = os.environ if environ is None else environ
    configured = env.get("DAGSTER_HOME")
    home = Path(configured) if configured else settings.data_dir / "dagster"
    return home.expanduser().resolve()


def ensure_instance(home: Path) -> Path:
    """Create ``home`` and a laptop-sized ``dagster.yaml`` in it unless one exists; return it."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        tmp = config.with_suffix(f".yaml.{os.getpid()}.tmp")
        tmp.write_text(INSTANCE_YAML)
        tmp.replace(config)
    return config


def initialize_storage(home: Path) -> bool:
    """Create the instance's storage once; return whether this call created it.

    The webserver and the daemon (and their code servers) each create missing SQLite storage when
    they open the instance; started at the same moment on a fresh home, they stamp its schema twice
    and then refuse to load ("more than one head"). A file lock makes the first one do it alone.
    """
    import fcntl
    import warnings

    marker = home / ".storage-initialized"
    if marker.exists():
        return False
    with (home / ".storage.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from dagster import DagsterInstance

            with DagsterInstance.from_config(str(home)) as instance:
                instance.get_runs(limit=1)
        marker.write_text("Dagster storage created by windpipe; delete to redo.\n")
    return True


def partitions_start(environ: Mapping[str, str] | None = None) -> date:
    """The first partition day from ``WINDPIPE_PARTITIONS_START``, or the default."""
    env = os.environ if environ is None else environ
    value = env.get(PARTITIONS_START_ENV, "").strip()
    if not value:
        return DEFAULT_PARTITIONS_START
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{PARTITIONS_START_ENV}={value!r} is not a date; expected YYYY-MM-DD"
        ) from None


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
            "WINDPIPE_TARGET_DB_URL": target_url,
            "WINDPIPE_ETL_VARIABLES": ",".join(settings.etl_variables),
            "WINDPIPE_ETL_AGGREGATIONS": ",".join(settings.etl_aggregations),
        }
    )
    if first_day is not None and not env.get(PARTITIONS_START_ENV):
        env[PARTITIONS_START_ENV] = first_day.isoformat()
    return env
