"""The Dagster definitions of windpipe, one module per kind; each is a thin wrapper over ``etl``."""
