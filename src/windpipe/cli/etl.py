"""``windpipe etl`` and ``windpipe backfill``: run the pipeline for one day or a range of days."""
