"""Start the Dagster daemon with dagster-docker's DockerRunLauncher: each run in its own container.

compose.runlauncher.yaml makes this the daemon's command:

    python /opt/dagster/docker_run_launcher.py windpipe dagster daemon

It sets the ``run_launcher`` section of ``$DAGSTER_HOME/dagster.yaml`` (the containers' instance,
docker/dagster/dagster.yaml), then replaces itself with the command after it.

The launcher gives a run container only the variables its ``env_vars`` lists, and it refuses to
launch a run when a listed one is unset in the daemon. So the list is made at each start from the
variables the daemon will have: every ``WINDPIPE_*`` and ``DAGSTER_*`` of this container, plus
those ``windpipe dagster daemon`` exports (``dagster_environment``). A run then loads the same
definitions (the fleet, where partitions start) and resources as the daemon that launched it.

Compose names what is the project's: ``RUN_LAUNCHER_IMAGE`` (this image) and
``RUN_LAUNCHER_PROJECT`` (the Compose project: its network ``<project>_default``, its volume
``<project>_windpipe-data`` and a label ``windpipe/project=<project>`` on each run container).
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from windpipe.errors import WindpipeError
from windpipe.orchestration.instance import dagster_environment, dagster_home
from windpipe.settings import load_settings

#: Where the containers keep Dagster's run files (compose.yaml's windpipe-data volume).
DATA_DIR = "/var/lib/windpipe"
#: Label on every run container, whose value is the Compose project (``docker ps --filter``).
PROJECT_LABEL = "windpipe/project"
HEADER = (
    "# Written by /opt/dagster/docker_run_launcher.py at each start of the daemon: the image's\n"
    "# docker/dagster/dagster.yaml plus the run_launcher of compose.runlauncher.yaml.\n"
)


def passed_variables(environ: Mapping[str, str]) -> list[str]:
    """The variables a run container gets: those of windpipe and Dagster the daemon will have."""
    settings = load_settings()
    exported = dagster_environment(
        settings, target_url="", home=dagster_home(settings, environ), base=environ
    )
    return sorted(name for name in exported if name.startswith(("WINDPIPE_", "DAGSTER_")))


def run_launcher(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``run_launcher`` section: the same image, network, volume and user as the services."""
    project = environ["RUN_LAUNCHER_PROJECT"]
    return {
        "module": "dagster_docker",
        "class": "DockerRunLauncher",
        "config": {
            "image": environ["RUN_LAUNCHER_IMAGE"],
            "network": f"{project}_default",
            "env_vars": passed_variables(environ),
            "container_kwargs": {
                # Run files (compute logs, step outputs) where the webserver reads them.
                "volumes": [f"{project}_windpipe-data:{DATA_DIR}"],
                # As the services: a PID 1 that forwards SIGTERM (Dagster's terminate stops it).
                "init": True,
                "labels": {PROJECT_LABEL: project},
            },
        },
    }


def write_instance(home: Path, environ: Mapping[str, str]) -> Path:
    """Set ``run_launcher`` in ``home/dagster.yaml`` (atomically; a restart rewrites it)."""
    config_file = home / "dagster.yaml"
    config = yaml.safe_load(config_file.read_text()) or {}
    config["run_launcher"] = run_launcher(environ)
    tmp = config_file.with_name(f"dagster.yaml.{os.getpid()}.tmp")
    tmp.write_text(HEADER + yaml.safe_dump(config, sort_keys=False))
    tmp.replace(config_file)
    return config_file


def main(argv: list[str]) -> None:
    """Write the instance, then exec ``argv`` (the daemon)."""
    if not argv:
        sys.exit("usage: docker_run_launcher.py COMMAND [ARG ...]  (e.g. windpipe dagster daemon)")
    try:
        written = write_instance(dagster_home(load_settings(), os.environ), os.environ)
    except WindpipeError as exc:  # a bad setting: the message names it, as `windpipe` would
        sys.exit(f"error: {exc}")
    print(f"DockerRunLauncher configured in {written}", flush=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
