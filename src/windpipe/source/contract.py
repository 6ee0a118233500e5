"""The source table's schema contract: the columns windpipe reads and the types it reads them as.

An operator may change the source table behind windpipe's back (rename a column, change its
type). Read as it stands, such a table is served wrong rather than refused: an integer ``power``
is already rounded, a text one breaks the encoders, a ``timestamp without time zone`` is read in
the session's time zone and labelled UTC. So the API checks the table against this contract
before it serves it, and each breach says which column, the type found, the type expected, and
the statement that fixes it.

The contract: ``timestamp`` is ``timestamp with time zone``; ``turbine`` is ``text`` (or
``varchar``); each configured signal's column is ``double precision`` (``real`` is accepted: it
converts to double exactly), and so is each column of its period statistics the table holds
(``<column>__min``, ``__max``, ``__std``, ``__count``; optional). Other columns are the
operator's business.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine

from windpipe.catalog import Variable, statistic_column
from windpipe.errors import SourceSchemaError
from windpipe.source.store import (
    STORED_STATISTICS,
    add_column_sql,
    column_types,
    grant_select_sql,
    rename_column_sql,
    retype_column_sql,
)

TIMESTAMPTZ = "timestamp with time zone"
TURBINE = "text"
SIGNAL = "double precision"

_TIMESTAMPTZ = re.compile(r"timestamp(\(\d\))? with time zone")
_TURBINE = re.compile(r"text|character varying(\(\d+\))?")
_SIGNAL = re.compile(r"double precision|real")
#: Types whose values were rounded to whole numbers when they were written.
_WHOLE = re.compile(r"smallint|integer|bigint")
#: Types PostgreSQL converts to double precision without a USING clause.
_NUMERIC = re.compile(r"smallint|integer|bigint|real|numeric(\(\d+(,\d+)?\))?")


@dataclass(frozen=True)
class Breach:
    """One way the source table breaks the contract."""

    #: The column (None: the table itself is missing).
    column: str | None
    #: The type found (None: the column, or the table, is missing).
    found: str | None
    #: The type the contract asks for (for the table: ``"a table"``).
    expected: str
    #: How to fix it: a statement to run, or a setting to change.
    fix: str
    #: Why the type found would be served wrong, when that is not obvious.
    why: str = ""
    #: The type is right, but the session's role may not read the column.
    unreadable: bool = False

    def __str__(self) -> str:
        why = f" ({self.why})" if self.why else ""
        if self.unreadable:
            return f"column {self.column} may not be read by the API's role: {self.fix}"
        if self.column is None:
            return f"the source database has no `data` table{why}: {self.fix}"
        if self.found is None:
            return f"column {self.column} is missing (expected {self.expected}){why}: {self.fix}"
        return f"column {self.column} is {self.found}, expected {self.expected}{why}: {self.fix}"


def breaches(
    columns: Mapping[str, str], variables: Iterable[Variable], *, unreadable: Iterable[str] = ()
) -> list[Breach]:
    """How the table whose columns and types are ``columns`` (as ``format_type`` spells them)
    breaks the contract for the configured ``variables``; empty when it keeps it. The columns of
    ``unreadable`` (the reading role has no SELECT on them) break it too."""
    if not columns:
        return [Breach(None, None, "a table", "run `windpipe db init`")]
    variables = list(variables)
    found = _types(columns, variables)
    typed = {(b.column or "").split(" ")[0] for b in found}
    hidden = set(unreadable)
    statistics = [c for v in variables for c in _statistics(v) if c in columns]
    for name in ["timestamp", "turbine", *(v.column for v in variables), *statistics]:
        if name in hidden and name in columns and name not in typed:
            fix = f"run `windpipe db init` (it grants SELECT) or {grant_select_sql('<the role>')}"
            found.append(Breach(name, columns[name], columns[name], fix, unreadable=True))
    return found


def _types(columns: Mapping[str, str], variables: Iterable[Variable]) -> list[Breach]:
    """The breaches of type (and missing columns)."""
    found = []
    timestamp = columns.get("timestamp")
    if timestamp is None or not _TIMESTAMPTZ.fullmatch(timestamp):
        fix, why = _add_or_alter("timestamp", timestamp, TIMESTAMPTZ), ""
        if timestamp is not None and timestamp.startswith("timestamp"):  # without time zone
            fix = (
                retype_column_sql("timestamp", TIMESTAMPTZ, "\"timestamp\" AT TIME ZONE 'UTC'")
                + " (or the zone its values were written in)"
            )
            why = "timestamptz: a naive one is read in the session's time zone, then labelled UTC"
        found.append(Breach("timestamp", timestamp, TIMESTAMPTZ, fix, why))
    turbine = columns.get("turbine")
    if turbine is None or not _TURBINE.fullmatch(turbine):
        found.append(
            Breach("turbine", turbine, f"{TURBINE} (or varchar)", _add_or_alter("turbine", turbine))
        )
    for variable in variables:
        kind = columns.get(variable.column)
        if kind is not None and _SIGNAL.fullmatch(kind):
            continue
        name = variable.column
        label = name if name == variable.name else f"{name} (signal {variable.name})"
        if kind is None:
            fix = (
                f"rename it back ({rename_column_sql('<its name>', name)}), add it "
                f"({add_column_sql(name, SIGNAL)}) or map the signal to the column that holds it "
                f'([signals.{variable.name}] column = "<its name>")'
            )
            found.append(Breach(label, None, SIGNAL, fix))
            continue
        why = "its values were rounded to whole numbers when written" if _WHOLE.match(kind) else ""
        found.append(Breach(label, kind, SIGNAL, _add_or_alter(name, kind), why))
    for variable in variables:  # period statistics: optional, but served as numbers when held
        for name in _statistics(variable):
            kind = columns.get(name)
            if kind is not None and not _SIGNAL.fullmatch(kind):
                found.append(Breach(name, kind, SIGNAL, _add_or_alter(name, kind)))
    return found


def _statistics(variable: Variable) -> list[str]:
    """The columns that may hold ``variable``'s period statistics (``<column>__min``, ...)."""
    return [statistic_column(variable.column, s) for s in STORED_STATISTICS]


def _add_or_alter(column: str, found: str | None, expected: str | None = None) -> str:
    """The statement that adds ``column``, or gives it the type the contract expects."""
    expected = expected or (TURBINE if column == "turbine" else SIGNAL)
    if found is None:
        return add_column_sql(column, expected)
    using = None if _NUMERIC.fullmatch(found) else f'"{column}"::{expected}'
    return retype_column_sql(column, expected, using)


def describe(found: Iterable[Breach]) -> str:
    """The breaches as one line: what the API tells its clients and logs."""
    return "the source table breaks windpipe's schema contract: " + "; ".join(map(str, found))


def check(columns: Mapping[str, str], variables: Iterable[Variable]) -> None:
    """Raise SourceSchemaError, naming every breach, unless the table keeps the contract."""
    found = breaches(columns, variables)
    if found:
        raise SourceSchemaError(describe(found))


def check_source(engine: Engine, variables: Iterable[Variable]) -> list[Breach]:
    """The breaches of the source database at ``engine`` (empty when it keeps the contract)."""
    return breaches(column_types(engine), variables)
