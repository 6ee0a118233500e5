"""windpipe: wind-turbine SCADA data from a source PostgreSQL, through an API, into 10-minute aggregates."""

__version__ = "0.1.0"
