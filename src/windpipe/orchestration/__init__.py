"""Dagster orchestration of the ETL: ``definitions.py`` exposes ``defs``; ``defs/`` holds the thin
Dagster wrappers; the plain functions they call live beside them (``catchup``, ``quality``,
``reporting``, ``instance``), so they can be tested and reused without Dagster.

Importing this package is cheap: Dagster is only imported by ``definitions`` and ``defs``.
"""
