"""Every statement on ``window_flag`` and ``flag_day`` that the CLI and orchestration make.

Flags are replaced per (turbine, UTC day) in one transaction: the days' old flags are deleted, the
new ones inserted and ``flag_day`` records how many, so a re-run gives the same rows and a failure
half-way leaves the previous flags. The API's reads are SQL text in ``warehouse.queries``.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

import polars as pl
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from windpipe.catalog import DAY, days_between, utc_midnight
from windpipe.warehouse.store import _target_errors, ensure_schema

_DELETE = text(
    'DELETE FROM window_flag WHERE turbine = ANY(:turbines) AND "timestamp" >= :lo '
    'AND "timestamp" < :hi'
)
_INSERT = text(
    'INSERT INTO window_flag (turbine, "timestamp", flag, signal) '
    "SELECT * FROM unnest(CAST(:turbine AS text[]), CAST(:ts AS timestamptz[]), "
    "CAST(:flag AS text[]), CAST(:signal AS text[]))"
)
_RECORD = text(
    "INSERT INTO flag_day (turbine, day, flags, computed_at) "
    "SELECT * FROM unnest(CAST(:turbine AS text[]), CAST(:day AS date[]), "
    "CAST(:flags AS int[]), CAST(:at AS timestamptz[])) "
    "ON CONFLICT (turbine, day) DO UPDATE SET flags = EXCLUDED.flags, "
    "computed_at = EXCLUDED.computed_at"
)


def replace_flags(
    engine: Engine,
    flags: pl.DataFrame,
    *,
    turbines: Sequence[str],
    first: date,
    last: date,
    computed_at: datetime | None = None,
) -> int:
    """Replace the flags of ``turbines`` on the UTC days ``[first, last]`` with ``flags``
    (``turbine``, ``timestamp`` naive UTC, ``flag``, ``signal`` or null), in one transaction;
    flags outside those turbines and days are not written. Returns the rows written."""
    lo, hi = utc_midnight(first), utc_midnight(last) + DAY
    kept = flags.filter(
        pl.col("turbine").is_in(list(turbines))
        & (pl.col("timestamp") >= lo.replace(tzinfo=None))
        & (pl.col("timestamp") < hi.replace(tzinfo=None))
    ).unique(["turbine", "timestamp", "flag", "signal"], maintain_order=True)
    at = computed_at or datetime.now(UTC)
    per_day = {
        (t, d): n
        for t, d, n in kept.group_by("turbine", pl.col("timestamp").dt.date().alias("day"))
        .len()
        .iter_rows()
    }
    records = [(t, d) for t in turbines for d in days_between(first, last)]
    ensure_schema(engine)
    with _target_errors(engine, "writing the flags"), engine.begin() as conn:
        conn.execute(_DELETE, {"turbines": list(turbines), "lo": lo, "hi": hi})
        if kept.height:
            conn.execute(
                _INSERT,
                {
                    "turbine": kept["turbine"].to_list(),
                    "ts": [t.replace(tzinfo=UTC) for t in kept["timestamp"].to_list()],
                    "flag": kept["flag"].to_list(),
                    "signal": kept["signal"].fill_null("").to_list(),
                },
            )
        conn.execute(
            _RECORD,
            {
                "turbine": [t for t, _ in records],
                "day": [d for _, d in records],
                "flags": [int(per_day.get((t, d), 0)) for t, d in records],
                "at": [at] * len(records),
            },
        )
    return kept.height


def flags_frame(
    conn: Connection, first: date, last: date, *, turbines: Sequence[str] | None = None
) -> pl.DataFrame:
    """The stored flags on the UTC days ``[first, last]``: ``turbine``, ``timestamp`` (naive UTC),
    ``flag``, ``signal`` (null for a flag about the whole window), by turbine and time."""
    rows = conn.execute(
        text(
            "SELECT turbine, \"timestamp\" AT TIME ZONE 'UTC', flag, NULLIF(signal, '') "
            'FROM window_flag WHERE "timestamp" >= :lo AND "timestamp" < :hi '
            "AND (CAST(:turbines AS text[]) IS NULL OR turbine = ANY(:turbines)) "
            'ORDER BY turbine, "timestamp", flag, signal'
        ),
        {
            "lo": utc_midnight(first),
            "hi": utc_midnight(last) + DAY,
            "turbines": None if turbines is None else list(turbines),
        },
    ).all()
    return pl.DataFrame(
        rows,
        schema={
            "turbine": pl.String,
            "timestamp": pl.Datetime("us"),
            "flag": pl.String,
            "signal": pl.String,
        },
        orient="row",
    )


def flag_days(conn: Connection, first: date, last: date) -> dict[tuple[str, date], int]:
    """Per (turbine, UTC day) in ``[first, last]`` whose flags were computed: how many."""
    rows = conn.execute(
        text("SELECT turbine, day, flags FROM flag_day WHERE day >= :first AND day <= :last"),
        {"first": first, "last": last},
    )
    return {(str(t), d): int(n) for t, d, n in rows}
