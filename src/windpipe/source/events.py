"""Turbine events: ``windpipe events import``'s work without the CLI, and every statement on the
``turbine_event`` table.

An events file (CSV or Parquet, a few thousand rows at most in practice) is read whole, checked and
converted with Polars (times to UTC as ``windpipe import`` converts them, by its own time parser),
and upserted by ``(turbine, start, code)`` in one transaction: a bad row stops the file and nothing
of it is kept. The API reads the table through ADBC with literal SQL (see ``store``): every
literal below is a timestamp rendered from a parsed ``datetime`` or a checked turbine id.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
from sqlalchemy import Engine, text

from windpipe.catalog import TURBINE_ID
from windpipe.settings import ImportConfig
from windpipe.source.importer import (
    ImportFileError,
    _arrow_line,
    _check_delimiter,
    _csv_header,
    _csv_input,
    _TimeParser,
    file_format,
)
from windpipe.source.store import _literal, _turbine_literal

#: The table's columns, in order: also the default column names of an events file.
EVENT_COLUMNS = ("turbine", "start", "end", "code", "message")
EVENT_SCHEMA = pa.schema(
    [
        pa.field("turbine", pa.string(), nullable=False),
        pa.field("start", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("end", pa.timestamp("us", tz="UTC")),
        pa.field("code", pa.string(), nullable=False),
        pa.field("message", pa.string()),
    ]
)
_WHOLE_ID = f"^{TURBINE_ID}$"


@dataclass(frozen=True)
class EventColumns:
    """The file's column holding each field of an event (default: the field's own name)."""

    turbine: str = "turbine"
    start: str = "start"
    end: str = "end"
    code: str = "code"
    message: str = "message"


@dataclass
class EventReport:
    """What an import of one events file read and wrote."""

    path: Path
    read: int = 0  # rows of the file
    events: int = 0  # distinct (turbine, start, code) kept
    new: int = 0
    changed: int = 0
    ongoing: int = 0  # events without an end
    duplicates: int = 0  # rows repeating a (turbine, start, code) of the file: the last kept
    turbines: int = 0
    codes: list[str] = field(default_factory=list)  # the distinct codes kept
    turbine_ids: list[str] = field(default_factory=list)  # the distinct turbines kept

    @property
    def unchanged(self) -> int:
        """Events already held as they are (a re-import)."""
        return self.events - self.new - self.changed


def _read(path: Path, fmt: str, delimiter: str, columns: EventColumns) -> tuple[pl.DataFrame, str]:
    """The file's event columns (CSV: as text), and how a row is named (line or row)."""
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    wanted = [columns.turbine, columns.start, columns.end, columns.code, columns.message]
    if fmt == "csv":
        import pyarrow.csv as pacsv

        names = _csv_header(path, delimiter)
        _check_delimiter(path, names, delimiter)
        where = "line 1"
    else:
        import pyarrow.parquet as pq

        try:
            names = list(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ImportFileError(
                f"{path}: not a readable Parquet file ({_arrow_line(exc)})"
            ) from None
        where = "schema"
    # The message is optional: a file without the default column has none.
    needed = [c for c in wanted if not (c == columns.message == "message" and c not in names)]
    missing = [c for c in needed if c not in names]
    if missing:
        raise ImportFileError(
            f"{path}: {where}: column{'s' if len(missing) > 1 else ''} {', '.join(missing)} not "
            f"in the file; it has: {', '.join(names[:40])}{' …' if len(names) > 40 else ''} "
            "(rename them with --turbine-column, --start-column, --end-column, --code-column, "
            "--message-column)"
        )
    present = list(dict.fromkeys(needed))
    if fmt == "csv":
        with _csv_input(path, None) as stream:
            try:
                table = pacsv.read_csv(
                    stream,
                    parse_options=pacsv.ParseOptions(delimiter=delimiter),
                    convert_options=pacsv.ConvertOptions(
                        include_columns=present,
                        column_types={c: pa.string() for c in present},
                        strings_can_be_null=True,
                    ),
                )
            except pa.ArrowInvalid as exc:
                raise ImportFileError(
                    f"{path}: not a valid CSV file ({_arrow_line(exc)})"
                ) from None
    else:
        table = pq.read_table(path, columns=present)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame, fmt


def _text(raw: pl.Series) -> pl.Series:
    """A column as trimmed text, empty text as missing."""
    value = raw.cast(pl.String).str.strip_chars()
    return value.replace("", None)


def read_events(
    path: Path,
    *,
    columns: EventColumns = EventColumns(),
    timezone: str | None = None,
    delimiter: str = ",",
    format: str | None = None,
    time_format: str = "auto",
) -> tuple[pl.DataFrame, EventReport]:
    """The events of ``path`` as ``turbine, start, end, code, message`` (UTC times), one per
    (turbine, start, code) (the file's last wins), with the report of what was read.

    :class:`ImportFileError` names the file, line (CSV; row for Parquet) and column of the first
    bad row: a missing or malformed turbine id, start or code, a bad time, an end not after its
    start. Naive times are read in ``timezone`` (refused without one), as ``windpipe import``
    reads them.
    """
    fmt = file_format(path, format)
    # ImportConfig checks the zone and carries what the time parser needs.
    mapping = ImportConfig(
        format=fmt, delimiter=delimiter, timezone=timezone, time_format=time_format
    )
    frame, fmt = _read(path, fmt, delimiter, columns)
    n = frame.height

    def where(row: int) -> str:
        return f"line {row + 2:,}" if fmt == "csv" else f"row {row + 1:,}"

    turbine = _text(frame[columns.turbine])
    code = _text(frame[columns.code])
    message = (
        _text(frame[columns.message])
        if columns.message in frame.columns
        else pl.repeat(None, n, dtype=pl.String, eager=True)
    )
    checks: list[tuple[str, str, pl.Series]] = [
        ("missing turbine id", columns.turbine, turbine.is_null()),
        (
            "bad turbine id (letters, digits, _ . - only)",
            columns.turbine,
            turbine.is_not_null() & ~turbine.str.contains(_WHOLE_ID).fill_null(True),
        ),
    ]
    stamps: dict[str, pl.Series] = {}
    layouts: dict[str, str] = {}
    for name in ("start", "end"):
        column = getattr(columns, name)
        raw = frame[column]
        if raw.dtype == pl.String:
            raw = _text(raw).alias(column)
        parser = _TimeParser(mapping, path)
        parser.decide(raw, where)
        parsed, found = parser.parse(raw, turbine)
        stamps[name] = parsed
        layouts[column] = parser.layout
        for check in found:
            if name == "end" and check.reason == "missing timestamp":
                continue  # no end: the event is ongoing
            reason = "missing start" if check.reason == "missing timestamp" else check.reason
            checks.append((reason.replace("timestamp", "time"), column, check.mask))
    start, end = stamps["start"], stamps["end"]
    checks.append(("missing code", columns.code, code.is_null()))
    checks.append(
        (
            "end not after start",
            columns.end,
            (end.is_not_null() & start.is_not_null() & (end <= start)).fill_null(False),
        )
    )
    for reason, column, mask in checks:
        mask = mask.fill_null(False)
        if mask.any():
            row = int(mask.arg_max() or 0)
            value = frame[column][row]
            shown = "" if value is None else f" {str(value)[:40]!r}"
            if reason == "unparseable time" and layouts.get(column):
                shown += (
                    f" (the column's times are read as {layouts[column]!r}, the layout of its "
                    "first; one layout a column: ISO 8601 with or without an offset, or give "
                    "--time-format)"
                )
            raise ImportFileError(
                f"{path}: {where(row)}, column {column!r}: {reason}{shown}; nothing was "
                "imported from this file"
            )
    # Rows come first-to-last; the last of a (turbine, start, code) wins, as a later export would.
    rows = pl.DataFrame(
        {
            "turbine": turbine,
            "start": start.cast(pl.Datetime("us", "UTC")),
            "end": end.cast(pl.Datetime("us", "UTC")),
            "code": code,
            "message": message,
        }
    )
    unique = rows.unique(["turbine", "start", "code"], keep="last", maintain_order=True).sort(
        ["turbine", "start", "code"]
    )
    report = EventReport(
        path,
        read=n,
        events=unique.height,
        ongoing=unique["end"].null_count(),
        duplicates=n - unique.height,
        turbines=unique["turbine"].n_unique(),
        codes=sorted(unique["code"].unique().to_list()),
        turbine_ids=sorted(unique["turbine"].unique().to_list()),
    )
    return unique, report


_STAGE = """
CREATE TEMPORARY TABLE incoming_event (LIKE turbine_event INCLUDING DEFAULTS) ON COMMIT DROP
"""
_STAGE_ROW = """
INSERT INTO incoming_event (turbine, start, "end", code, message)
VALUES (:turbine, :start, :end, :code, :message)
"""
_UPSERT = """
INSERT INTO turbine_event AS held (turbine, start, "end", code, message)
SELECT turbine, start, "end", code, message FROM incoming_event
ON CONFLICT (turbine, start, code) DO UPDATE
SET "end" = EXCLUDED."end", message = EXCLUDED.message
WHERE (held."end", held.message) IS DISTINCT FROM (EXCLUDED."end", EXCLUDED.message)
RETURNING (xmax = 0) AS inserted
"""


def upsert_events(engine: Engine, rows: pl.DataFrame) -> tuple[int, int]:
    """Write ``rows`` (as :func:`read_events` returns them) in one transaction, upserted by
    (turbine, start, code): how many were new and how many changed."""
    with engine.begin() as conn:
        if rows.height == 0:
            return 0, 0
        conn.execute(text(_STAGE))
        conn.execute(text(_STAGE_ROW), rows.to_dicts())
        written = [bool(inserted) for (inserted,) in conn.execute(text(_UPSERT))]
    new = sum(written)
    return new, len(written) - new


def import_events(
    path: Path,
    *,
    engine: Engine | None,
    columns: EventColumns = EventColumns(),
    timezone: str | None = None,
    delimiter: str = ",",
    format: str | None = None,
    time_format: str = "auto",
) -> EventReport:
    """Import one events file in one transaction (``engine`` None: check it, write nothing)."""
    rows, report = read_events(
        path,
        columns=columns,
        timezone=timezone,
        delimiter=delimiter,
        format=format,
        time_format=time_format,
    )
    if engine is not None:
        report.new, report.changed = upsert_events(engine, rows)
    return report


def select_events_sql(
    start: datetime, end: datetime, *, turbines: Sequence[str] | None = None
) -> str:
    """Events overlapping ``[start, end)`` (an ongoing one reaches to the future) of
    ``turbines`` (None: all), by turbine, start and code."""
    conditions = [
        f"start < {_literal(end)}",
        f'("end" IS NULL OR "end" > {_literal(start)})',
    ]
    if turbines is not None:
        listed = ", ".join(_turbine_literal(t) for t in turbines) or "NULL"
        conditions.append(f"turbine IN ({listed})")
    return (
        'SELECT turbine, start, "end", code, message FROM turbine_event '  # noqa: S608 - literals
        f"WHERE {' AND '.join(conditions)} ORDER BY turbine, start, code"
    )


#: The turbines that have events (the API accepts them in ``turbines=``).
EVENT_TURBINES_SQL = "SELECT DISTINCT turbine FROM turbine_event ORDER BY turbine"


#: The newest change of the events log (0 when it is empty): where a new reader starts.
EVENT_CHANGE_HEAD_SQL = "SELECT coalesce(max(id), 0)::bigint AS head FROM event_change"


def event_changes_sql(after: int, limit: int) -> str:
    """The first ``limit`` changes of the events log (migration s0006) after the change ``after``,
    oldest first."""
    return (
        'SELECT id, turbine, "first", "last", changed_at FROM event_change '  # noqa: S608 - ints
        f"WHERE id > {int(after)} ORDER BY id LIMIT {int(limit)}"
    )


def count_events(engine: Engine) -> int:
    """How many events the source holds."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM turbine_event")).scalar_one())


# -- the synthetic farm's events: written by the seed and the live feed ----------------------------
# Only on the turbines they generate and only the generator's codes (``[event_codes]``' default):
# an event imported for the same turbine under another code is left alone.

_CUT_AFTER = """
INSERT INTO turbine_event (turbine, start, "end", code, message)
SELECT turbine, :end, "end", code, message FROM turbine_event
WHERE turbine = ANY(:turbines) AND code = ANY(:codes) AND start < :end AND "end" > :end
ON CONFLICT (turbine, start, code) DO NOTHING
"""
_CUT_BEFORE = """
UPDATE turbine_event SET "end" = :start
WHERE turbine = ANY(:turbines) AND code = ANY(:codes) AND start < :start
  AND ("end" IS NULL OR "end" > :start)
"""
_DROP_WITHIN = """
DELETE FROM turbine_event
WHERE turbine = ANY(:turbines) AND code = ANY(:codes) AND start >= :start AND start < :end
"""
_WRITE = """
INSERT INTO turbine_event (turbine, start, "end", code, message)
VALUES (:turbine, :start, :end, :code, :message)
ON CONFLICT (turbine, start, code) DO UPDATE SET "end" = EXCLUDED."end", message = EXCLUDED.message
"""
_HELD_OPEN = """
SELECT turbine, start, "end", code, message FROM turbine_event
WHERE turbine = ANY(:turbines) AND code = ANY(:codes) AND ("end" IS NULL OR "end" >= :since)
ORDER BY turbine, start, code
"""
_SET_END = """
UPDATE turbine_event SET "end" = :end WHERE turbine = :turbine AND start = :start AND code = :code
"""


def _rows(
    events: Sequence[tuple[str, datetime, datetime | None, str, str]],
) -> list[dict[str, object]]:
    return [dict(zip(EVENT_COLUMNS, event, strict=True)) for event in events]


def replace_span_events(
    engine: Engine,
    events: Sequence[tuple[str, datetime, datetime | None, str, str]],
    start: datetime,
    end: datetime,
    *,
    turbines: Sequence[str],
    codes: Sequence[str],
) -> int:
    """Replace the events of ``codes`` that ``turbines`` have in ``[start, end)`` with
    ``events`` (``turbine, start, end, code, message``, clipped to the span) in one transaction,
    as the seed replaces the span's samples; returns how many were written.

    An event held across an edge keeps its part outside the span: one crossing ``start`` now ends
    there, one crossing ``end`` (closed) continues from there as an event of its own; an ongoing
    one crossing ``end`` is cut at ``start`` (what follows is the live feed's to say again).
    """
    bounds = {"turbines": list(turbines), "codes": list(codes), "start": start, "end": end}
    with engine.begin() as conn:
        conn.execute(text(_CUT_AFTER), bounds)
        conn.execute(text(_CUT_BEFORE), bounds)
        conn.execute(text(_DROP_WITHIN), bounds)
        if events:
            conn.execute(text(_WRITE), _rows(events))
    return len(events)


@dataclass(frozen=True)
class FeedRound:
    """One turbine's minutes in one round of the live feed: from ``first``; its rows held before
    the round ended at ``resumes`` (its newest sample's end; None: it had none)."""

    first: datetime
    resumes: datetime | None


def record_feed_events(
    engine: Engine,
    runs: Sequence[tuple[str, datetime, datetime | None, str, str]],
    rounds: dict[str, FeedRound],
    *,
    codes: Sequence[str],
) -> int:
    """Write the live feed's events of one round in one transaction; returns how many it wrote.

    ``runs``: each turbine's events in its new minutes (``end`` None: still going at the newest
    minute). An event the turbine holds ongoing (or that ends where the round starts, a seed's
    edge) is carried on by a run of the same code and message starting at the round's first
    minute; one it holds ongoing that no run carries on ended where its rows did.
    """
    if not rounds:
        return 0
    since = min(r.resumes or r.first for r in rounds.values())
    pending = list(runs)
    written = 0
    with engine.begin() as conn:
        held = conn.execute(
            text(_HELD_OPEN), {"turbines": list(rounds), "codes": list(codes), "since": since}
        ).all()
        for turbine, start, stop, code, message in held:
            fed = rounds[turbine]
            contiguous = fed.resumes is None or fed.resumes == fed.first
            if stop is not None and stop != fed.first:
                continue  # ended before the round: a closed event
            carried = next(
                (
                    run
                    for run in pending
                    if contiguous
                    and (run[0], run[1], run[3], run[4]) == (turbine, fed.first, code, message)
                ),
                None,
            )
            if carried is not None:
                pending.remove(carried)
                new_end = carried[2]
            elif stop is None:
                new_end = fed.resumes or fed.first
            else:
                continue
            if new_end is not None and new_end <= start:
                continue  # its rows were removed under it: nothing sound to end it at
            if new_end != stop:
                conn.execute(
                    text(_SET_END),
                    {"turbine": turbine, "start": start, "code": code, "end": new_end},
                )
                written += 1
        if pending:
            conn.execute(text(_WRITE), _rows(pending))
            written += len(pending)
    return written
