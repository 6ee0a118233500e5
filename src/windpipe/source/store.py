"""The source database's one owner: the ``data`` table's model and every statement on it.

Seeding, the live feed and the API's reads all go through here. The columns are the catalog's
variables, so a variable declared there is read and written with no change in this module.

The API reads through ADBC with *literal* SQL, because bound parameters make that driver 2-7x
slower: every literal below is a column name from the catalog or a timestamp rendered here from
a parsed ``datetime``, never text a user typed.
"""

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from itertools import pairwise

import numpy as np
import psycopg
import pyarrow as pa
from sqlalchemy import Engine, text

from windpipe import catalog
from windpipe.catalog import PERIOD_STATISTICS, Coverage, statistic_column
from windpipe.migrations import History, ensure_current, is_current

_PG_EPOCH_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _quoted(names: Sequence[str]) -> list[str]:
    """Column names, quoted; ValueError for anything but a lower-case identifier (the form the
    configuration accepts), so no other text can reach the SQL."""
    bad = [n for n in names if not _IDENTIFIER.fullmatch(n)]
    if bad:
        raise ValueError(f"not a source column: {bad}")
    return [f'"{n}"' for n in names]


def _columns(variables: Sequence[str]) -> str:
    """Quoted column list, ``timestamp`` first."""
    return ", ".join(['"timestamp"', *_quoted(variables)])


def _literal(moment: datetime) -> str:
    # isoformat of an aware datetime: digits, '-', ':', '.', '+', 'T' only. Naive means UTC (not
    # this process's local zone, which astimezone would assume).
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return "'" + moment.isoformat() + "'::timestamptz"


def _utc(moment: object) -> datetime | None:
    """A timestamptz read back (aware, in the session's TimeZone) as aware UTC."""
    return moment.astimezone(UTC) if isinstance(moment, datetime) else None


#: The source database's Alembic history, beside this module (``migrations/``).
HISTORY = History.beside(__file__, database="source", head="s0006", baseline="s0001")


def ensure_schema(engine: Engine) -> bool:
    """Bring the source's schema to the newest migration; return whether it had to."""
    return ensure_current(engine, HISTORY)


def schema_is_current(engine: Engine) -> bool:
    """Whether the source's schema is at the newest migration (one cheap query)."""
    return is_current(engine, HISTORY)


# -- reads (the API's, as literal SQL for ADBC) ----------------------------------------------------


def _turbine_literal(turbine: str) -> str:
    """A turbine id as a SQL literal; ValueError for anything but the form the configuration
    accepts (letters, digits, ``_ . -``), which cannot hold a quote."""
    if not catalog.is_turbine_id(turbine):
        raise ValueError(f"not a turbine id: {turbine!r}")
    return f"'{turbine}'"


#: The period statistics stored beside a signal's column (its mean), in the order served.
STORED_STATISTICS = tuple(s for s in PERIOD_STATISTICS if s != "mean")


def served_names(
    variables: Sequence[str], statistics: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """The value columns ``/data`` serves: each variable, then its statistics held
    (``wind_speed``, ``wind_speed__min``, ...)."""
    statistics = statistics or {}
    return [
        name
        for v in variables
        for name in (v, *(statistic_column(v, s) for s in statistics.get(v, ())))
    ]


def held_statistics(held: Mapping[str, str], columns: Mapping[str, str]) -> dict[str, list[str]]:
    """Per signal (``columns``: signal -> its source column), the statistics whose columns the
    table holds (``held``: its columns and types, as ``format_type`` spells them) as double
    precision or real: those ``/data`` serves beside the signal."""
    return {
        name: found
        for name, column in columns.items()
        if (
            found := [
                s
                for s in STORED_STATISTICS
                if held.get(statistic_column(column, s)) in ("double precision", "real")
            ]
        )
    }


def _selected(
    variables: Sequence[str],
    columns: Mapping[str, str] | None,
    statistics: Mapping[str, Sequence[str]] | None,
) -> str:
    """``turbine``, ``timestamp``, then each variable and its statistics, named as served."""
    columns = columns or {}
    statistics = statistics or {}
    pairs = []
    for v in variables:
        source = columns.get(v, v)
        pairs.append((source, v))
        pairs += [
            (statistic_column(source, s), statistic_column(v, s)) for s in statistics.get(v, ())
        ]
    sources = _quoted([src for src, _ in pairs])
    names = _quoted([name for _, name in pairs])
    return ", ".join(
        ['"turbine"', '"timestamp"']
        + [
            src if src == name else f"{src} AS {name}"
            for src, name in zip(sources, names, strict=True)
        ]
    )


def _limit(limit: int | None) -> str:
    """``LIMIT``, as a scalar subquery: the planner cannot read its value, so it plans for a
    tenth of the rows (PostgreSQL's rule for a limit it cannot estimate) and keeps the primary
    key's ordered scan. With the number written out, a page of 131,072 rows looks like a large
    part of the range to it, and it scans the heap and sorts instead (the heap is in time order,
    not turbine order, so its statistics price an index scan as random reads)."""
    return "" if limit is None else f" LIMIT (SELECT {int(limit)})"


def _one_of(turbines: Sequence[str]) -> str:
    """``turbine`` among ``turbines`` (sorted, each validated). One turbine is written as a
    range of one value, not ``=``: the planner drops an equality's column from the order it
    knows a branch has, and a ``UNION ALL`` of branches would then be sorted again."""
    listed = [_turbine_literal(t) for t in turbines]
    if len(listed) == 1:
        return f"turbine >= {listed[0]} AND turbine <= {listed[0]}"
    return f"turbine IN ({', '.join(listed) or 'NULL'})"


def select_range_sql(
    variables: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    turbines: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
    statistics: Mapping[str, Sequence[str]] | None = None,
    limit: int | None = None,
    after: tuple[str, datetime] | None = None,
) -> str:
    """Samples of ``variables`` of ``turbines`` (None: all) in ``[start, end)``, by turbine and
    time: ``turbine``, ``timestamp``, then each variable (read from its column in ``columns``)
    followed by the period statistics of it named in ``statistics`` (``wind_speed__min``, ...).

    With ``limit``, at most that many rows; with ``after`` (a turbine and a timestamp), only the
    rows past it: a keyset page along the primary key. Paging by rows, not by time, costs one
    query for an empty range and none for gaps.

    Every page is read in the primary key's order, without a sort. A later page is two ranges
    of the key, merged: the rest of ``after``'s turbine, then the turbines after it over the
    whole range (a skip scan). ``(turbine, "timestamp") > (...)`` in one scan would read every
    later turbine's samples *outside* the range too, and the planner often gave that up for a
    scan of the whole table and a sort on disk.
    """
    selected = _selected(variables, columns, statistics)
    within = [f'"timestamp" >= {_literal(start)}', f'"timestamp" < {_literal(end)}']
    listed = None if turbines is None else sorted(set(turbines))
    if after is None:
        branches = [within if listed is None else [_one_of(listed), *within]]
    else:
        turbine, moment = after
        current = _turbine_literal(turbine)
        branches = []
        if listed is None or turbine in listed:
            branches.append([_one_of([turbine]), f'"timestamp" > {_literal(moment)}', *within])
        if listed is None:
            branches.append([f"turbine > {current}", *within])
        elif later := [t for t in listed if t > turbine]:
            branches.append([_one_of(later), *within])
    order = ' ORDER BY turbine, "timestamp"'
    selects = [
        f"SELECT {selected} FROM data "  # noqa: S608 - validated names and literals only
        f"WHERE {' AND '.join(conditions)}"
        for conditions in branches or [[*within, "false"]]
    ]
    if len(selects) == 1:
        return selects[0] + order + _limit(limit)
    return (
        " UNION ALL ".join(f"({select}{order}{_limit(limit)})" for select in selects)
        + order
        + _limit(limit)
    )


def select_last_sql(
    variables: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    turbines: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
    statistics: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Per turbine of ``turbines`` (None: every turbine with samples), its latest row in
    ``[start, end)`` whose every variable is non-null, with the columns of
    :func:`select_range_sql`; by turbine, at most one row each.

    What ``SELECT DISTINCT ON (turbine) ... ORDER BY turbine, "timestamp" DESC`` answers, but
    written as one backward probe of the primary key per turbine (a lateral ``LIMIT 1``), so a
    long range costs no more than a short one.
    """
    columns = columns or {}
    selected = _selected(variables, columns, statistics).replace('"turbine"', "t.turbine", 1)
    conditions = [
        "d.turbine = t.turbine",
        f'd."timestamp" >= {_literal(start)}',
        f'd."timestamp" < {_literal(end)}',
        *(f"d.{c} IS NOT NULL" for c in _quoted([columns.get(v, v) for v in variables])),
    ]
    if turbines is not None:
        listed = ", ".join(f"({_turbine_literal(t)})" for t in turbines) or "(NULL)"
        each = f"(VALUES {listed}) AS t(turbine)"
        head = ""
    else:
        each = "turbines t"
        head = _EACH_TURBINE
    return (
        f"{head}SELECT {selected} FROM {each} "  # noqa: S608 - validated names and literals only
        f"CROSS JOIN LATERAL (SELECT * FROM data d WHERE {' AND '.join(conditions)} "
        'ORDER BY d."timestamp" DESC LIMIT 1) AS last '
        "WHERE t.turbine IS NOT NULL ORDER BY t.turbine"
    )


#: Every turbine with samples, with its first and last timestamp and exact row count: a loose
#: scan of the primary key (one probe per turbine), then index-only counts per turbine.
_EACH_TURBINE = """
WITH RECURSIVE turbines AS (
    (SELECT turbine FROM data ORDER BY turbine LIMIT 1)
    UNION ALL
    SELECT (SELECT d.turbine FROM data d WHERE d.turbine > t.turbine ORDER BY d.turbine LIMIT 1)
    FROM turbines t WHERE t.turbine IS NOT NULL
)
"""
#: Every turbine with samples (one probe of the primary key per turbine).
TURBINE_IDS_SQL = (
    _EACH_TURBINE  # noqa: S608 - constant text
    + "SELECT turbine FROM turbines WHERE turbine IS NOT NULL ORDER BY turbine"
)
TURBINES_SQL = (
    _EACH_TURBINE  # noqa: S608 - constant text
    + """
SELECT t.turbine AS turbine,
       (SELECT min(d."timestamp") FROM data d WHERE d.turbine = t.turbine) AS first,
       (SELECT max(d."timestamp") FROM data d WHERE d.turbine = t.turbine) AS last,
       (SELECT count(*) FROM data d WHERE d.turbine = t.turbine) AS rows
FROM turbines t WHERE t.turbine IS NOT NULL ORDER BY t.turbine
"""
)

#: Every turbine with samples and its first and last sample: two index probes per turbine.
TURBINE_SPANS_SQL = (
    _EACH_TURBINE  # noqa: S608 - constant text
    + """
SELECT t.turbine AS turbine,
       (SELECT min(d."timestamp") FROM data d WHERE d.turbine = t.turbine) AS first,
       (SELECT max(d."timestamp") FROM data d WHERE d.turbine = t.turbine) AS last
FROM turbines t WHERE t.turbine IS NOT NULL ORDER BY t.turbine
"""
)


def fingerprints_sql(first: date, last: date, turbines: Sequence[str] | None = None) -> str:
    """Fingerprints of the UTC days ``[first, last]`` of ``turbines`` (None: all): ``turbine``,
    ``day``, ``samples`` and ``checksum`` (as text), by turbine and day.

    They are kept by triggers (migration s0003), so this reads one row per (turbine, day) through
    the primary key whatever the sampling rate. A (turbine, day) without a row holds no samples.
    """
    conditions = [f"day >= DATE '{first.isoformat()}'", f"day <= DATE '{last.isoformat()}'"]
    if turbines is not None:
        listed = ", ".join(_turbine_literal(t) for t in turbines) or "NULL"
        conditions.append(f"turbine IN ({listed})")
    return (
        "SELECT turbine, day, samples, checksum::text AS checksum "  # noqa: S608 - literals only
        f"FROM day_fingerprint WHERE {' AND '.join(conditions)} ORDER BY turbine, day"
    )


#: Turbines that have (or had) samples, from the fingerprints (a small table).
FINGERPRINT_TURBINES_SQL = "SELECT DISTINCT turbine FROM day_fingerprint ORDER BY turbine"


#: First and last timestamp and row count, as columns ``first``, ``last``, ``rows`` (exact; a
#: scan of the whole table: for the writer's tools, not for the API).
COVERAGE_SQL = (
    'SELECT min("timestamp") AS first, max("timestamp") AS last, count(*) AS rows FROM data'
)
#: The API's coverage, all from the primary key and the catalog: first and last timestamp (two
#: index probes) and the planner's row estimate (``-1`` before the table was first analysed).
COVERAGE_ESTIMATE_SQL = (
    'SELECT (SELECT min("timestamp") FROM data) AS first, '
    '(SELECT max("timestamp") FROM data) AS last, '
    "(SELECT reltuples::bigint FROM pg_class WHERE oid = 'data'::regclass) AS estimate"
)
#: The exact row count, for tables small enough to count in a few milliseconds.
COUNT_SQL = "SELECT count(*) AS rows FROM data"
PING_SQL = "SELECT 1 AS ok"
#: The source table's columns, their types as PostgreSQL spells them (``format_type``) and whether
#: the session's role may read them, in table order: a catalog query, with ``data`` resolved as
#: every statement here resolves it (the search path). No row: there is no such table. The schema
#: contract (``source.contract``) reads it; its answer also proves the database answers.
COLUMN_TYPES_SQL = (
    "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type, "
    "has_column_privilege(a.attrelid, a.attnum, 'SELECT') AS readable "
    "FROM pg_catalog.pg_attribute a "
    "WHERE a.attrelid = to_regclass('data') AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attnum"
)


def add_column_sql(column: str, kind: str) -> str:
    """The statement that adds ``column`` of type ``kind`` (suggested to operators, not run)."""
    return f'ALTER TABLE data ADD COLUMN "{column}" {kind}'


def retype_column_sql(column: str, kind: str, using: str | None = None) -> str:
    """The statement that gives ``column`` the type ``kind``, converting its values with the
    expression ``using`` when given (suggested to operators, not run)."""
    return f'ALTER TABLE data ALTER COLUMN "{column}" TYPE {kind}' + (
        f" USING {using}" if using else ""
    )


def rename_column_sql(old: str, new: str) -> str:
    """The statement that renames column ``old`` to ``new`` (suggested to operators, not run)."""
    return f'ALTER TABLE data RENAME COLUMN {old} TO "{new}"'


def grant_select_sql(role: str) -> str:
    """The statement that lets ``role`` read the table (suggested to operators, not run)."""
    return f"GRANT SELECT ON data TO {role}"


def column_types(engine: Engine) -> dict[str, str]:
    """The source table's columns and their types, in table order (empty: no such table)."""
    with engine.connect() as conn:
        rows = conn.execute(text(COLUMN_TYPES_SQL))
        return {str(name): str(kind) for name, kind, _ in rows}


def coverage(engine: Engine) -> Coverage:
    """First and last timestamp and row count of the source table."""
    with engine.connect() as conn:
        first, last, rows = conn.execute(text(COVERAGE_SQL)).one()
    return Coverage(_utc(first), _utc(last), int(rows))


def newest_timestamp(engine: Engine) -> datetime | None:
    """The latest sample's timestamp, None when the table is empty."""
    with engine.connect() as conn:
        value = conn.execute(text('SELECT max("timestamp") FROM data')).scalar_one()
    return _utc(value)


# -- writes ----------------------------------------------------------------------------------------


def stored_variables(table: pa.Table, columns: Sequence[str] | None = None) -> list[str]:
    """The columns of ``columns`` (default: the catalog's variables) that ``table`` carries."""
    wanted = list(catalog.VARIABLES) if columns is None else list(columns)
    return [c for c in wanted if c in table.column_names]


def encode_copy_binary(table: pa.Table, variables: Sequence[str], turbine: str) -> bytes:
    """One turbine's rows in PostgreSQL's binary COPY format (no header): timestamp, then
    ``variables``, then the turbine id, the table's column order.

    A numpy record per row (~60 bytes for three variables), no Python loop: the turbine's id is
    the same in every row, so the record has a fixed size.
    """
    rows = _copy_records(table, len(variables), turbine)
    for i, column in enumerate(variables, start=1):
        rows[f"l{i}"] = 8
        rows[f"v{i}"] = _numpy(table[column], np.float64)
    return rows.tobytes()


def _copy_records(table: pa.Table, floats: int, turbine: str) -> np.ndarray:
    """One binary COPY record per row of ``table``: the field count, the timestamp and the
    turbine id filled in; ``floats`` float8 fields between them (``l1``/``v1`` ...) left to fill."""
    name = turbine.encode()
    row = np.dtype(
        [("n", ">i2"), ("l0", ">i4"), ("v0", ">i8")]
        + [item for i in range(1, floats + 1) for item in ((f"l{i}", ">i4"), (f"v{i}", ">f8"))]
        + [("lt", ">i4"), ("vt", f"S{len(name)}")]
    )
    rows = np.empty(table.num_rows, dtype=row)
    rows["n"] = 2 + floats
    rows["l0"] = 8
    rows["v0"] = _numpy(table["timestamp"].cast(pa.int64()), np.int64) - _PG_EPOCH_US
    rows["lt"] = len(name)
    rows["vt"] = name
    return rows


def _numpy(column: pa.ChunkedArray, dtype: type[np.generic]) -> np.ndarray:
    """A null-free fixed-width column as an ndarray; ``to_numpy`` would import pandas (~1 s)."""
    array = column.combine_chunks()
    if array.null_count:
        raise ValueError("binary COPY of the samples needs null-free columns")
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * 8)


def _by_turbine(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """The table's turbines in order of appearance, each with its contiguous slice of rows."""
    if table.num_rows == 0:
        return []
    encoded = table["turbine"].combine_chunks().dictionary_encode()
    codes = np.frombuffer(
        encoded.indices.buffers()[1], dtype=np.int32, count=len(encoded), offset=encoded.offset * 4
    )
    edges = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist(), len(codes)]
    names = encoded.dictionary.to_pylist()
    parts = [(str(names[codes[lo]]), table.slice(lo, hi - lo)) for lo, hi in pairwise(edges)]
    if len({name for name, _ in parts}) != len(parts):
        raise ValueError("the samples must be grouped by turbine (each turbine's rows together)")
    return parts


def replace_samples(
    conn: psycopg.Connection,
    table: pa.Table,
    start: datetime,
    end: datetime,
    *,
    turbines: Sequence[str],
    columns: Sequence[str] | None = None,
) -> int:
    """Replace ``turbines``' samples of ``[start, end)`` by ``table``, on an open transaction.

    ``table`` has ``turbine``, ``timestamp`` and the ``columns`` (default: the catalog's variables
    it carries), grouped by turbine; a turbine of ``turbines`` absent from it is cleared. Returns
    the rows written.
    """
    variables = stored_variables(table, columns)
    conn.execute(
        'DELETE FROM data WHERE turbine = ANY(%s) AND "timestamp" >= %s AND "timestamp" < %s',
        (list(turbines), start, end),
    )
    sql = f"COPY data ({_columns(variables)}, turbine) FROM STDIN (FORMAT BINARY)"
    with conn.cursor().copy(sql) as copy:
        copy.write(_COPY_HEADER)
        for turbine, rows in _by_turbine(table):
            copy.write(encode_copy_binary(rows, variables, turbine))
        copy.write(_COPY_TRAILER)
    return table.num_rows


def newest_per_turbine(engine: Engine) -> dict[str, datetime]:
    """Each turbine's latest sample (a loose scan of the primary key: one probe per turbine)."""
    sql = (
        _EACH_TURBINE  # noqa: S608 - constant text
        + """
        SELECT t.turbine,
               (SELECT max(d."timestamp") FROM data d WHERE d.turbine = t.turbine)
        FROM turbines t WHERE t.turbine IS NOT NULL
        """
    )
    with engine.connect() as conn:
        return {str(turbine): newest for turbine, newest in conn.execute(text(sql))}


def insert_new_samples(
    engine: Engine, table: pa.Table, *, columns: Sequence[str] | None = None
) -> int:
    """Insert samples, leaving any (turbine, timestamp) already held untouched; rows offered."""
    variables = stored_variables(table, columns)
    values = ", ".join([":timestamp", *(f":{v}" for v in variables), ":turbine"])
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO data ({_columns(variables)}, turbine) VALUES ({values}) "  # noqa: S608
                'ON CONFLICT (turbine, "timestamp") DO NOTHING'
            ),
            table.to_pylist(),
        )
    return table.num_rows


def vacuum(engine: Engine) -> None:
    """VACUUM (ANALYZE) the table: set hint bits and the visibility map after a bulk load.

    Freshly copied rows carry neither, so the first readers would pay for setting them (day reads
    ~1.4x slower); done right after the load, while the pages are in cache.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) data"))


# -- imports of SCADA exports (CSV, Parquet) -------------------------------------------------------


def held_columns(conn: psycopg.Connection) -> list[str]:
    """The source table's columns, in table order, on an open transaction."""
    rows = conn.execute(
        "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = 'data'::regclass "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
    ).fetchall()
    return [str(name) for (name,) in rows]


def add_value_columns(conn: psycopg.Connection, columns: Sequence[str]) -> list[str]:
    """Add those of ``columns`` the table lacks, as nullable double precision, on an open
    transaction (a signal's column, or one of its period statistics); return those added.

    The table's lock is taken only when a column is missing: ``ALTER TABLE`` locks out every
    reader until the transaction ends, so columns already held cost no lock at all. The API's
    role reads them at once (its SELECT is granted on the table, not per column), and the
    fingerprint triggers hash whole rows, so values written into them move their day's
    fingerprint.
    """
    held = set(held_columns(conn))
    missing = [c for c in dict.fromkeys(columns) if c not in held]
    for name in _quoted(missing):
        conn.execute(f"ALTER TABLE data ADD COLUMN IF NOT EXISTS {name} double precision")
    return missing


def _validity(array: pa.Array) -> np.ndarray:
    """Whether each value of ``array`` is present, as a bool ndarray."""
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    bits = np.frombuffer(array.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little")[array.offset : array.offset + len(array)].astype(
        bool
    )


def encode_copy_binary_nullable(table: pa.Table, columns: Sequence[str], turbine: str) -> bytes:
    """One turbine's rows in binary COPY format (no header), like :func:`encode_copy_binary`,
    but ``columns`` may hold nulls (a null is a field of length -1 and no value bytes).

    Each row is first laid out at full size; the value bytes of null fields are then cut out with
    one boolean mask over the whole buffer, so there is still no Python loop over the rows.
    """
    rows = _copy_records(table, len(columns), turbine)
    count, row = table.num_rows, rows.dtype
    keep: np.ndarray | None = None
    for i, column in enumerate(columns, start=1):
        array = table[column].combine_chunks().cast(pa.float64())
        present = _validity(array)
        rows[f"l{i}"] = np.where(present, 8, -1)
        rows[f"v{i}"] = np.frombuffer(
            array.buffers()[1], dtype=np.float64, count=len(array), offset=array.offset * 8
        )
        if not present.all():
            if keep is None:
                keep = np.ones((count, row.itemsize), dtype=bool)
            start = row.fields[f"v{i}"][1]  # type: ignore[index]
            keep[~present, start : start + 8] = False
    if keep is None:
        return rows.tobytes()
    return rows.view(np.uint8).reshape(count, row.itemsize)[keep].tobytes()


_IMPORT_STAGE = "windpipe_import_stage"


def upsert_samples(
    conn: psycopg.Connection, table: pa.Table, *, columns: Sequence[str]
) -> tuple[int, int]:
    """Insert ``table``'s samples, or replace ``columns`` of those already held, on an open
    transaction; return (rows inserted, rows whose values changed).

    ``table`` has ``turbine``, ``timestamp`` (UTC) and ``columns`` (nullable float), grouped by
    turbine, one row per (turbine, timestamp). Other columns of rows already held are left as they
    are. When nothing is held yet for any of the table's turbines between its own first and last
    timestamp there (a first import), the rows are copied straight in; otherwise they go through
    a temporary table and ``INSERT ... ON CONFLICT DO UPDATE``, which leaves identical rows
    untouched.
    """
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return 0, 0
    parts = _by_turbine(table)
    spans = [pc.min_max(rows["timestamp"]).as_py() for _, rows in parts]
    held = conn.execute(  # one probe of the primary key per turbine
        "SELECT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) "
        "AS r(turbine, lo, hi) WHERE EXISTS (SELECT 1 FROM data d WHERE d.turbine = r.turbine "
        'AND d."timestamp" >= r.lo AND d."timestamp" <= r.hi))',
        ([name for name, _ in parts], [s["min"] for s in spans], [s["max"] for s in spans]),
    ).fetchone()
    overlap = bool(held and held[0])
    names = _quoted(columns)
    listed = f"{_columns(columns)}, turbine"
    into = _IMPORT_STAGE if overlap else "data"
    if overlap:
        conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_IMPORT_STAGE} "
            "(LIKE data INCLUDING DEFAULTS) ON COMMIT DROP"
        )
    with conn.cursor().copy(f"COPY {into} ({listed}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(_COPY_HEADER)
        for turbine, rows in parts:
            copy.write(encode_copy_binary_nullable(rows, columns, turbine))
        copy.write(_COPY_TRAILER)
    if not overlap:
        return table.num_rows, 0
    assignments = ", ".join(f"{n} = EXCLUDED.{n}" for n in names)
    old = ", ".join(f"d.{n}" for n in names)
    new = ", ".join(f"EXCLUDED.{n}" for n in names)
    merged = conn.execute(
        f"WITH merged AS (INSERT INTO data AS d ({listed}) "  # noqa: S608 - validated names
        f"SELECT {listed} FROM {_IMPORT_STAGE} "
        f'ON CONFLICT (turbine, "timestamp") DO UPDATE SET {assignments} '
        f"WHERE ROW({old}) IS DISTINCT FROM ROW({new}) "
        "RETURNING (xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) "
        "FROM merged"
    ).fetchone()
    conn.execute(f"TRUNCATE {_IMPORT_STAGE}")
    assert merged is not None
    return int(merged[0]), int(merged[1])


# -- turbine origins: synthetic (the seed's) or imported (real data) -------------------------------

SYNTHETIC = "synthetic"
IMPORTED = "imported"


def origins(conn: Engine | psycopg.Connection) -> dict[str, str]:
    """Each turbine with a recorded origin: ``synthetic`` or ``imported``."""
    sql = "SELECT turbine, origin FROM turbine_origin ORDER BY turbine"
    if isinstance(conn, psycopg.Connection):
        return {str(t): str(o) for t, o in conn.execute(sql).fetchall()}
    with conn.connect() as connection:
        return {str(t): str(o) for t, o in connection.execute(text(sql))}


def record_origin(conn: psycopg.Connection, turbines: Sequence[str], origin: str) -> None:
    """Record ``origin`` for ``turbines``, on an open transaction.

    ``imported`` always wins (real data stays real); ``synthetic`` never replaces ``imported``.
    """
    if origin not in (SYNTHETIC, IMPORTED):
        raise ValueError(f"not an origin: {origin!r}")
    conn.execute(
        "INSERT INTO turbine_origin (turbine, origin) SELECT t, %s FROM unnest(%s::text[]) AS t "
        "ON CONFLICT (turbine) DO UPDATE SET origin = EXCLUDED.origin, changed_at = now() "
        "WHERE EXCLUDED.origin = 'imported' AND turbine_origin.origin <> 'imported'",
        (origin, list(turbines)),
    )


def turbine_ids(engine: Engine) -> list[str]:
    """Every turbine with samples (one probe of the primary key per turbine)."""
    with engine.connect() as conn:
        return [str(t) for (t,) in conn.execute(text(TURBINE_IDS_SQL))]


def days_with_data(engine: Engine, *, before: date) -> dict[str, set[date]]:
    """Each turbine's UTC days before ``before`` that hold samples (from the fingerprints)."""
    days: dict[str, set[date]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT turbine, day FROM day_fingerprint WHERE samples > 0 AND day < :before"),
            {"before": before},
        )
        for turbine, day in rows:
            days.setdefault(str(turbine), set()).add(day)
    return days
