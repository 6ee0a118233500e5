"""The ``windpipe`` command line: one Typer app, one module per group of commands.

Command modules import heavy libraries inside the command bodies, so ``windpipe etl`` never pays for
Dagster or FastAPI. ``windpipe --version`` does not come here at all: ``windpipe.__main__``, the
console script's entry point, answers it before Typer is imported.
"""

import sys

from windpipe.cli import (
    apikey,
    config,
    dagster,
    db,
    etl,
    events,
    export,
    flags,
    importer,
    kpis,
    serve,
    source,
    up,
)
from windpipe.cli.app import app

__all__ = ["app", "main"]
_ = (
    apikey,
    config,
    dagster,
    db,
    etl,
    events,
    flags,
    export,
    importer,
    kpis,
    serve,
    source,
    up,
)  # imported for their command registrations


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
