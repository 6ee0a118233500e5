"""The ETL: extract from the API, aggregate to 10-minute windows, replace in the target.

Modules: ``extract`` (API client), ``transform`` (pure aggregation), ``store`` (the target's
tables: atomic replace and the reads orchestration needs), ``pipeline`` (days, or a range of
days), ``session`` (settings -> API client + target engine).
"""
