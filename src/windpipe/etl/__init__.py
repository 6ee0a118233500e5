"""The ETL: extract a day from the API, aggregate it to 10-minute windows, replace it in the target.

Modules: ``extract`` (API client), ``transform`` (pure aggregation), ``load`` (target schema and
atomic window replace), ``pipeline`` (one day, or a range of days). Importing this package is cheap:
the public names below are loaded on first use, so ``windpipe.errors`` can import ``etl.errors``
without paying for Polars, PyArrow or SQLAlchemy.
"""

import importlib
from typing import Any

_EXPORTS = {
    "EtlError": "windpipe.etl.errors",
    "ApiUnavailableError": "windpipe.etl.errors",
    "ApiRequestError": "windpipe.etl.errors",
    "IncompleteResponseError": "windpipe.etl.errors",
    "TargetUnavailableError": "windpipe.etl.errors",
    "ApiClient": "windpipe.etl.extract",
    "aggregate_10min": "windpipe.etl.transform",
    "create_target_schema": "windpipe.etl.load",
    "replace_window": "windpipe.etl.load",
    "DayResult": "windpipe.etl.pipeline",
    "run_day": "windpipe.etl.pipeline",
    "run_range": "windpipe.etl.pipeline",
    "signal_names": "windpipe.etl.pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'windpipe.etl' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
