"""windpipe: wind-turbine SCADA samples, served by an API, aggregated into 10-minute windows."""

__version__ = "0.1.0"
