"""SCADA exports (CSV, Parquet) into the source table: ``windpipe import``'s work, without the CLI.

A file is read in batches (PyArrow's streaming CSV reader, Parquet row groups), each batch is
checked and converted with Polars (timestamps to UTC, values to float, turbine ids), and written
with binary ``COPY`` through :func:`windpipe.source.store.upsert_samples`, all in one transaction
per file: a bad row stops the file and nothing of it is kept, unless bad rows are to be skipped.
Memory is bounded by the batch size, not by the file's.
"""

import contextlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl
import psycopg
import pyarrow as pa
from sqlalchemy import Engine

from windpipe.catalog import MAX_IDENTIFIER, TURBINE_ID, statistic_column
from windpipe.errors import WindpipeError
from windpipe.settings import ImportConfig, split_mapped
from windpipe.source import store

#: CSV bytes parsed per batch: big enough for COPY to run at full speed, small enough that a
#: batch and its converted copies stay within a few hundred MB whatever the file's size.
CSV_BLOCK_BYTES = 2 << 20
PARQUET_BATCH_ROWS = 131_072

_WHOLE_ID = f"^{TURBINE_ID}$"
_OFFSET = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$", re.IGNORECASE)
_EPOCH = re.compile(r"-?\d+(\.\d*)?")
#: Layouts with an offset ``auto`` recognises, tried in order on a file's first timestamp:
#: RFC 3339 (seconds required), then ISO 8601 to the minute ("2026-12-04T10:00Z").
_AWARE_FORMATS = ("%+", "%Y-%m-%dT%H:%M%#z", "%Y-%m-%d %H:%M%#z")
#: Naive layouts ``auto`` recognises, tried in order on a file's first timestamp.
_NAIVE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


class ImportFileError(WindpipeError, ValueError):
    """A file cannot be imported as it stands; the message names the file, line and column."""


@dataclass
class FileReport:
    """What an import of one file read, kept, skipped and wrote."""

    path: Path
    rows_read: int = 0
    rows: int = 0  # rows kept: valid, one per (turbine, timestamp)
    inserted: int = 0
    changed: int = 0
    duplicates: int = 0  # rows of the file repeating a (turbine, timestamp) within a batch
    skipped: Counter[str] = field(default_factory=Counter)  # bad rows by reason
    turbines: Counter[str] = field(default_factory=Counter)  # rows kept per turbine
    new_turbines: list[str] = field(default_factory=list)  # not in the configuration
    were_synthetic: list[str] = field(default_factory=list)  # held synthetic samples before
    first: datetime | None = None
    last: datetime | None = None
    nulls: dict[str, int] = field(default_factory=dict)  # per signal, among the rows kept
    mapped: dict[str, str] = field(default_factory=dict)  # file column -> signal
    ignored: list[str] = field(default_factory=list)  # columns of the file left out
    bytes: int = 0
    seconds: float = 0.0

    @property
    def unchanged(self) -> int:
        """Rows already held with the same values (a re-import)."""
        return self.rows - self.inserted - self.changed


@dataclass(frozen=True)
class _Plan:
    """How one file is read: its columns, and the mapping resolved against them."""

    path: Path
    format: str
    mapped: dict[str, str]  # file column -> signal name
    ignored: list[str]
    time_column: str
    turbine_column: str | None


class _Counting:
    """A binary file whose reads report their size (the progress bar's bytes)."""

    def __init__(self, raw: BinaryIO, on_bytes: Callable[[int], None] | None) -> None:
        self.raw = raw
        self.on_bytes = on_bytes
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if self.on_bytes is not None and data:
            self.on_bytes(len(data))
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        self.raw.close()


def file_format(path: Path, given: str | None) -> str:
    """``csv`` or ``parquet``: the one given, else from the file's extension."""
    if given is not None:
        return given
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    if suffixes and suffixes[-1] in (".csv", ".txt", ".tsv"):
        return "csv"
    raise ImportFileError(
        f"{path}: cannot tell the format from the name; give --format csv or --format parquet"
    )


def _csv_input(path: Path, on_bytes: Callable[[int], None] | None) -> pa.NativeFile:
    stream: pa.NativeFile = pa.PythonFile(_Counting(path.open("rb"), on_bytes), mode="r")
    codec = _COMPRESSION.get(path.suffix.lower())
    if codec is not None:
        stream = pa.CompressedInputStream(stream, codec)
    return stream


def _csv_header(path: Path, delimiter: str) -> list[str]:
    import pyarrow.csv as pacsv

    with _csv_input(path, None) as stream:
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=1 << 16),
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
            )
        except (pa.ArrowInvalid, OSError) as exc:
            raise ImportFileError(f"{path}: not a readable CSV file ({_arrow_line(exc)})") from None
        return list(reader.schema.names)


def _arrow_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


#: Field separators a CSV export may use instead of the one configured: how to name each one to
#: the user, as the option (for a shell) and as the mapping key (TOML).
_DELIMITERS = {
    ";": ("';'", "--delimiter ';'", 'delimiter = ";"'),
    "\t": ("tab", "--delimiter $'\\t'", 'delimiter = "\\t"'),
    ",": ("','", "--delimiter ','", 'delimiter = ","'),
    "|": ("'|'", "--delimiter '|'", 'delimiter = "|"'),
}


def _check_delimiter(path: Path, names: Sequence[str], delimiter: str) -> None:
    """Refuse a header that reads as one column holding another separator, naming the option
    that reads it (else the error would list every mapped column as missing)."""
    if len(names) != 1:  # one column can never be imported: a time and a signal are needed
        return
    for sep, (shown, option, key) in _DELIMITERS.items():
        if sep != delimiter and sep in names[0]:
            given = _DELIMITERS.get(delimiter, (repr(delimiter),))[0]
            raise ImportFileError(
                f"{path}: line 1 reads as one column with the delimiter {given} "
                f"({names[0][:60]!r}); the file looks {shown}-separated: give {option} "
                f"(or {key} in its [imports.<name>] mapping)"
            )


def plan(path: Path, mapping: ImportConfig, signals: Sequence[str]) -> _Plan:
    """Check ``path``'s columns against ``mapping``: every mapped column must be in the file."""
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    fmt = file_format(path, mapping.format)
    if fmt == "csv":
        names = _csv_header(path, mapping.delimiter)
        _check_delimiter(path, names, mapping.delimiter)
    else:
        import pyarrow.parquet as pq

        try:
            names = list(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ImportFileError(
                f"{path}: not a readable Parquet file ({_arrow_line(exc)})"
            ) from None
    where = "line 1" if fmt == "csv" else "schema"
    wanted = dict(mapping.columns) or {n: n for n in names if n in signals}
    if not wanted:
        raise ImportFileError(
            f"{path}: no column is mapped to a signal and none is named like one "
            f"({', '.join(signals)}); map them with --map COLUMN=signal or [imports.<name>] columns"
        )
    twice = sorted({s for s in wanted.values() if list(wanted.values()).count(s) > 1})
    if twice:
        raise ImportFileError(f"{path}: several columns map to the same signal: {', '.join(twice)}")
    for column, target in wanted.items():
        if split_mapped(target)[0] not in signals:
            raise ImportFileError(
                f"{path}: column {column} maps to {target!r}, whose signal is not configured; "
                f"accepted: {', '.join(signals)}"
            )
    needed = [mapping.time_column, *wanted]
    turbine_column = mapping.turbine_column
    if mapping.turbine is None and turbine_column is None:
        if "turbine" not in names:
            raise ImportFileError(
                f"{path}: no turbine: give --turbine-column COLUMN (the column of turbine ids) "
                "or --turbine ID (one turbine for the whole file)"
            )
        turbine_column = "turbine"
    if turbine_column is not None:
        needed.append(turbine_column)
    missing = [c for c in needed if c not in names]
    if missing:
        raise ImportFileError(
            f"{path}: {where}: column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"not in the file; it has: {', '.join(names[:40])}{' …' if len(names) > 40 else ''}"
        )
    ignored = [n for n in names if n not in needed]
    return _Plan(path, fmt, wanted, ignored, mapping.time_column, turbine_column)


def _batches(
    plan: _Plan, mapping: ImportConfig, on_bytes: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    """The file's needed columns in batches; CSV values come as text (checked by the caller)."""
    named = [plan.time_column, *plan.mapped, plan.turbine_column]
    columns = [c for c in dict.fromkeys(named) if c is not None]
    if plan.format == "csv":
        import pyarrow.csv as pacsv

        with _csv_input(plan.path, on_bytes) as stream:
            try:
                reader = pacsv.open_csv(
                    stream,
                    read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                    parse_options=pacsv.ParseOptions(delimiter=mapping.delimiter),
                    convert_options=pacsv.ConvertOptions(
                        include_columns=columns,
                        column_types={c: pa.string() for c in columns},
                        strings_can_be_null=True,
                    ),
                )
                yield from reader
            except pa.ArrowInvalid as exc:
                raise ImportFileError(
                    f"{plan.path}: not a valid CSV file ({_arrow_line(exc)})"
                ) from None
        return
    import pyarrow.parquet as pq

    with pq.ParquetFile(plan.path) as parquet:
        total_rows = max(parquet.metadata.num_rows, 1)
        size = plan.path.stat().st_size
        done = 0
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            yield batch
            if on_bytes is not None:  # Parquet is read by column chunks: bytes in row shares
                now = size * min(done + batch.num_rows, total_rows) // total_rows
                on_bytes(now - size * done // total_rows)
            done += batch.num_rows


# -- conversion ------------------------------------------------------------------------------------


@dataclass
class _TimeParser:
    """How a file's timestamps become UTC, decided on its first timestamp and kept for the file."""

    mapping: ImportConfig
    path: Path
    kind: str = ""  # "aware" (strings with offsets), "naive", "epoch", "typed"
    layout: str = ""  # the strftime layout of text timestamps
    unit: float = 1.0  # epoch: seconds per unit
    seen: set[tuple[str, datetime]] = field(default_factory=set)  # infer: ambiguous times met

    def decide(self, raw: pl.Series, where: Callable[[int], str]) -> None:
        """Decide the kind and layout from the batch's first non-null timestamp."""
        fmt = self.mapping.time_format
        dtype = raw.dtype
        if dtype != pl.String:
            if isinstance(dtype, pl.Datetime):
                self.kind = "typed" if dtype.time_zone else "naive"
            elif dtype.is_numeric():
                self.kind, self.unit = "epoch", 1e-3 if fmt == "epoch_ms" else 1.0
            elif dtype == pl.Date:
                self.kind = "naive"
            else:
                raise ImportFileError(
                    f"{self.path}: column {raw.name!r}: {dtype} is not a timestamp type"
                )
        elif fmt in ("epoch", "epoch_ms"):
            self.kind, self.unit = "epoch", 1e-3 if fmt == "epoch_ms" else 1.0
        elif "%" in fmt:
            self.layout = fmt
            self.kind = "aware" if re.search(r"%[:#]?z", fmt) else "naive"
        else:
            present = raw.drop_nulls()
            if present.len() == 0:
                return  # decided on a later batch; this one's rows all lack a timestamp
            first = str(present[0]).strip()
            index = int(raw.is_not_null().arg_max() or 0)
            if _EPOCH.fullmatch(first) and fmt == "auto":
                self.kind = "epoch"
            elif _OFFSET.search(first):
                self.kind, self.layout = "aware", "%+"
                for layout in _AWARE_FORMATS:
                    if pl.Series([first]).str.to_datetime(layout, strict=False).null_count() == 0:
                        self.layout = layout
                        break
            else:
                for layout in _NAIVE_FORMATS:
                    parsed = pl.Series([first]).str.to_datetime(layout, strict=False)
                    if parsed.null_count() == 0:
                        self.kind, self.layout = "naive", layout
                        break
                else:
                    raise ImportFileError(
                        f"{self.path}: {where(index)}, column {raw.name!r}: {first[:40]!r} is "
                        "not a timestamp windpipe recognises (ISO 8601 with or without an "
                        "offset, or epoch seconds); give --time-format, e.g. '%d/%m/%Y %H:%M'"
                    )
            if self.kind == "naive" and self.mapping.timezone is None:
                raise ImportFileError(
                    f"{self.path}: {where(index)}, column {raw.name!r}: {first[:40]!r} has no "
                    "UTC offset; give --timezone (the zone the export was written in, e.g. "
                    "--timezone Europe/Paris, or UTC)"
                )
        if self.kind == "naive" and self.mapping.timezone is None:
            raise ImportFileError(
                f"{self.path}: column {raw.name!r} holds timestamps without a UTC offset; "
                "give --timezone (e.g. --timezone Europe/Paris, or UTC)"
            )

    def parse(self, raw: pl.Series, turbines: pl.Series) -> tuple[pl.Series, list["_Check"]]:
        """UTC timestamps (null where bad), and the checks that say which rows are bad and why."""
        utc = pl.Datetime("us", "UTC")
        missing = raw.is_null()
        checks = [_Check("missing timestamp", raw.name, missing)]
        if not self.kind:  # no timestamp seen yet: every row of this batch lacks one
            return pl.Series("timestamp", [None] * raw.len(), dtype=utc), checks
        if self.kind == "typed":
            assert isinstance(raw.dtype, pl.Datetime)
            zone = raw.dtype.time_zone
            return raw.cast(pl.Datetime("us", zone)).dt.convert_time_zone("UTC"), checks
        text = raw.str.strip_chars() if raw.dtype == pl.String else None
        if self.kind == "epoch":
            number = text.cast(pl.Float64, strict=False) if text is not None else raw
            micros = (number.cast(pl.Float64) * (self.unit * 1e6)).round(0)
            ok = (micros.is_finite() & (micros.abs() < 2.5e17)).fill_null(False)
            nothing = pl.repeat(None, raw.len(), dtype=pl.Float64, eager=True)
            stamps = micros.zip_with(ok, nothing).cast(pl.Int64).cast(utc)
            checks.append(_Check("unparseable timestamp", raw.name, ~missing & stamps.is_null()))
            return stamps, checks
        if self.kind == "aware":
            assert text is not None
            stamps = text.str.to_datetime(
                self.layout, time_unit="us", time_zone="UTC", strict=False
            )
            checks.append(_Check("unparseable timestamp", raw.name, ~missing & stamps.is_null()))
            return stamps, checks
        # naive: wall-clock times of the given zone
        if text is not None:
            naive = text.str.to_datetime(self.layout, time_unit="us", strict=False)
        else:
            naive = raw.cast(pl.Datetime("us"))
        checks.append(_Check("unparseable timestamp", raw.name, ~missing & naive.is_null()))
        zone = self.mapping.timezone
        assert zone is not None
        early = naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        late = naive.dt.replace_time_zone(zone, ambiguous="latest", non_existent="null")
        checks.append(
            _Check(
                f"nonexistent local time in {zone}", raw.name, naive.is_not_null() & early.is_null()
            )
        )
        ambiguous = (early != late).fill_null(False)
        policy = self.mapping.ambiguous
        chosen = late if policy == "latest" else early
        if policy == "error":
            checks.append(_Check(f"ambiguous local time in {zone}", raw.name, ambiguous))
        elif policy == "infer" and ambiguous.any():
            # In an export in time order, the first of a repeated wall-clock time is summer time.
            second = np.zeros(raw.len(), dtype=bool)
            names, wall = turbines.to_list(), naive.to_list()
            for i in np.flatnonzero(ambiguous.to_numpy()).tolist():
                key = (str(names[i]), wall[i])
                if key in self.seen:
                    second[i] = True
                else:
                    self.seen.add(key)
            chosen = late.zip_with(pl.Series(second), early)
        return chosen.dt.convert_time_zone("UTC"), checks


@dataclass(frozen=True)
class _Check:
    """Rows of a batch that fail one check (``mask``), the reason, and the file column at fault."""

    reason: str
    column: str
    mask: pl.Series


def _period_starts(stamps: pl.Series, period: timedelta, label: str) -> tuple[pl.Series, pl.Series]:
    """The start of each row's period (an ``end`` label is its period's end), and whether each
    lies on a period boundary (periods divide a UTC day, as the ETL's windows do)."""
    micros = int(period.total_seconds()) * 1_000_000
    if label == "end":
        stamps = stamps - period
    aligned = (stamps.cast(pl.Int64) % micros == 0).fill_null(True)
    return stamps.alias("timestamp"), aligned


def statistic_columns(
    mapped: Mapping[str, str], signals: Mapping[str, str], mapping: ImportConfig
) -> tuple[dict[str, str], dict[str, str]]:
    """Where each mapped target (``signal`` or ``signal:stat``) is stored, and the count columns
    to fill with ``samples_per_period`` (-> the column of their means): a signal with period
    statistics and no count column gets one."""
    stored: dict[str, str] = {}
    counted: dict[str, str] = {}
    period = mapping.period_length is not None
    for target in mapped.values():
        signal, stat = split_mapped(target)
        column = signals[signal]
        if stat is not None and period:
            longest = statistic_column(column, "count")
            if (
                len(longest) > MAX_IDENTIFIER
                or len(statistic_column(signal, "count")) > MAX_IDENTIFIER
            ):
                too_long = column if len(column) >= len(signal) else signal
                raise ImportFileError(
                    f"signals.{signal}: {too_long!r} is too long to store its period statistics "
                    f"({statistic_column(too_long, 'count')!r} has {len(too_long) + 7} "
                    f"characters, PostgreSQL keeps {MAX_IDENTIFIER}); give the signal a name "
                    f"and column of at most {MAX_IDENTIFIER - 7} characters"
                )
        stored[target] = statistic_column(column, stat if period and stat else "mean")
    for target in mapped.values():
        signal, stat = split_mapped(target)
        if period and stat == "mean" and f"{signal}:count" not in mapped.values():
            counted[statistic_column(signals[signal], "count")] = stored[target]
    return stored, counted


def _where(plan: _Plan, row: int) -> str:
    """A row of the file (0-based, in file order), as its line (CSV, header on line 1) or row."""
    return f"line {row + 2:,}" if plan.format == "csv" else f"row {row + 1:,}"


def _show(value: Any) -> str:
    return repr(value if not isinstance(value, str) else value[:40])


@dataclass
class _Converter:
    """Turns a file's batches into the source table's rows, collecting what it found."""

    plan: _Plan
    mapping: ImportConfig
    columns: Mapping[str, str]  # signal name -> source column
    fleet: frozenset[str]
    allow_new_turbines: bool
    skip_bad_rows: bool
    report: FileReport
    #: Count columns filled with ``samples_per_period`` -> the column of their period means.
    counts: Mapping[str, str] = field(default_factory=dict)
    #: Statistics columns the table holds for a signal written, that the file does not give.
    cleared: Sequence[str] = ()
    times: _TimeParser = field(init=False)

    def __post_init__(self) -> None:
        self.times = _TimeParser(self.mapping, self.plan.path)

    def convert(self, batch: pa.RecordBatch, offset: int) -> pl.DataFrame:
        """The batch as ``turbine, timestamp, <source columns>``: valid rows, sorted by turbine
        and time, one per (turbine, timestamp) (the file's last wins); ``offset``: rows before."""
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        plan, n = self.plan, frame.height
        if plan.turbine_column is not None:
            raw_turbine = frame[plan.turbine_column]
            turbine = raw_turbine.cast(pl.String).str.strip_chars()
            checks = [
                _Check("missing turbine id", plan.turbine_column, turbine.is_null()),
                _Check(
                    "bad turbine id (letters, digits, _ . - only)",
                    plan.turbine_column,
                    turbine.is_not_null() & ~turbine.str.contains(_WHOLE_ID).fill_null(True),
                ),
            ]
        else:
            assert self.mapping.turbine is not None
            turbine = pl.repeat(self.mapping.turbine, n, dtype=pl.String, eager=True)
            checks = []
        raw_time = frame[plan.time_column]
        if not self.times.kind:
            self.times.decide(raw_time, lambda row: _where(plan, offset + row))
        stamps, time_checks = self.times.parse(raw_time, turbine)
        checks[:0] = time_checks
        period = self.mapping.period_length
        if period is not None:
            stamps, aligned = _period_starts(stamps, period, self.mapping.label)
            checks.append(
                _Check(f"time not on a {self.mapping.period} boundary", raw_time.name, ~aligned)
            )
        values = {}
        for source, signal in plan.mapped.items():
            raw = frame[source]
            if raw.dtype == pl.String:
                number = raw.str.strip_chars().cast(pl.Float64, strict=False)
            elif raw.dtype.is_numeric() or raw.dtype == pl.Boolean:
                number = raw.cast(pl.Float64)
            else:
                raise ImportFileError(
                    f"{plan.path}: column {source!r}: {raw.dtype} is not a number type"
                )
            if raw.dtype == pl.String:
                bad = raw.is_not_null() & (number.is_null() | number.is_infinite())
            else:
                bad = number.is_infinite()
            number = number.fill_nan(None)  # NaN means missing, in text ("NaN") as in numbers
            checks.append(_Check("non-numeric value", source, bad.fill_null(False)))
            stat = split_mapped(signal)[1]
            if stat == "std":
                checks.append(_Check("negative standard deviation", source, number < 0))
            elif stat == "count":
                whole = (number >= 0) & (number == number.floor())
                checks.append(_Check("count not a whole number >= 0", source, ~whole))
            values[self.columns[signal]] = number
        for column, mean in self.counts.items():  # samples_per_period where a mean is given
            per = float(self.mapping.period_samples or 0)
            values[column] = pl.repeat(per, n, dtype=pl.Float64, eager=True).zip_with(
                values[mean].is_not_null(), pl.repeat(None, n, dtype=pl.Float64, eager=True)
            )
        for column in self.cleared:  # statistics held of a signal written: this file's or none
            values[column] = pl.repeat(None, n, dtype=pl.Float64, eager=True)
        known = turbine.is_in(list(self.fleet)).fill_null(True)
        if not self.allow_new_turbines:
            checks.append(
                _Check("turbine not in the configuration", plan.turbine_column or "", ~known)
            )
        bad_rows = self._judge(checks, frame, offset)
        rows = pl.DataFrame({"turbine": turbine, "timestamp": stamps, **values})
        if bad_rows is not None:
            rows = rows.filter(~bad_rows)
        self.report.rows_read += n
        kept = rows.sort(["turbine", "timestamp"], maintain_order=True)
        unique = kept.unique(["turbine", "timestamp"], keep="last", maintain_order=True)
        self.report.duplicates += kept.height - unique.height
        return unique

    def _judge(self, checks: list[_Check], frame: pl.DataFrame, offset: int) -> pl.Series | None:
        """The batch's bad rows (None: none); a bad row is an error unless rows may be skipped."""
        masks = [c.mask.fill_null(False) for c in checks]
        if not masks:
            return None
        bad = pl.select(pl.any_horizontal([pl.lit(m) for m in masks])).to_series()
        if not bad.any():
            return None
        if not self.skip_bad_rows:
            row = int(bad.arg_max() or 0)
            check = next(c for c, m in zip(checks, masks, strict=True) if m[row])
            value = frame[check.column][row] if check.column in frame.columns else None
            shown = "" if value is None else f" {_show(value)}"
            hint = (
                f"; add it as [[turbines]] id = {_show(value)} in windpipe.toml, or pass "
                "--allow-new-turbines"
                if check.reason.startswith("turbine not in")
                else ""
            )
            raise ImportFileError(
                f"{self.plan.path}: {_where(self.plan, offset + row)}, column {check.column!r}: "
                f"{check.reason}{shown}{hint}; nothing was imported from this file "
                "(fix the row, or pass --skip-bad-rows)"
            )
        seen = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True)
        for check, mask in zip(checks, masks, strict=True):
            counted = mask & ~seen
            count = int(counted.sum())
            if count:
                self.report.skipped[f"{check.reason} ({check.column})"] += count
            seen = seen | mask
        return bad

    def account(self, rows: pl.DataFrame) -> None:
        """Add a converted batch's rows to the report."""
        report = self.report
        report.rows += rows.height
        if rows.height == 0:
            return
        for name, count in rows["turbine"].value_counts().iter_rows():
            report.turbines[str(name)] += int(count)
        first, last = rows["timestamp"].min(), rows["timestamp"].max()
        assert isinstance(first, datetime) and isinstance(last, datetime)
        report.first = first if report.first is None else min(report.first, first)
        report.last = last if report.last is None else max(report.last, last)
        for signal, column in self.columns.items():
            if column in rows.columns:
                report.nulls[signal] = report.nulls.get(signal, 0) + rows[column].null_count()


_DONE = object()


def _prefetched(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items``, produced by a thread of their own at most ``depth`` ahead: reading and checking
    the next batch (Arrow and Polars release the GIL) overlaps PostgreSQL's work on this one.
    An exception of the producer is raised here; leaving early stops the producer."""
    import queue
    import threading

    ahead: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ahead.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            ahead.put(exc)

    worker = threading.Thread(target=produce, name="windpipe-import-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = ahead.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                ahead.get(timeout=0.05)
        worker.join()


def import_file(
    path: Path,
    mapping: ImportConfig,
    *,
    signals: Mapping[str, str],
    fleet: Sequence[str],
    engine: Engine | None,
    skip_bad_rows: bool = False,
    allow_new_turbines: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> FileReport:
    """Import one file in one transaction (``engine`` None: a dry run that writes nothing).

    ``signals`` maps each configured signal to its source column; ``fleet`` is the configured
    turbine ids. A bad row raises :class:`ImportFileError` and nothing of the file is kept,
    unless ``skip_bad_rows``, which leaves the row out and counts it by reason.
    """
    began = time.perf_counter()
    if mapping.turbine is not None and mapping.turbine not in fleet and not allow_new_turbines:
        raise ImportFileError(
            f"{path}: turbine {mapping.turbine!r} is not in the configuration "
            f"({', '.join(fleet)}); add it as [[turbines]] id = {mapping.turbine!r} in "
            "windpipe.toml, or pass --allow-new-turbines"
        )
    plan_ = plan(path, mapping, list(signals))
    report = FileReport(path, mapped=dict(plan_.mapped), ignored=list(plan_.ignored))
    try:
        wanted, counts = statistic_columns(plan_.mapped, signals, mapping)
    except ImportFileError as exc:
        raise ImportFileError(f"{path}: {exc}") from None
    report.nulls = dict.fromkeys(wanted, 0)

    def counted(size: int) -> None:
        report.bytes += size
        if on_bytes is not None:
            on_bytes(size)

    raw = engine.raw_connection() if engine is not None else None
    try:
        conn = raw.driver_connection if raw is not None else None
        assert conn is None or isinstance(conn, psycopg.Connection)
        written = [*wanted.values(), *counts]
        cleared: list[str] = []
        if conn is not None:
            # Columns the file writes that the table lacks are added in this file's transaction;
            # a signal's statistics the file does not give are cleared, so no row mixes this
            # file's values with another's statistics.
            store.add_value_columns(conn, written)
            in_table = set(store.held_columns(conn))
            for signal in dict.fromkeys(split_mapped(t)[0] for t in plan_.mapped.values()):
                for stat in store.STORED_STATISTICS:
                    column = statistic_column(signals[signal], stat)
                    if column in in_table and column not in written:
                        cleared.append(column)
        converter = _Converter(
            plan_,
            mapping,
            wanted,
            frozenset(fleet),
            allow_new_turbines,
            skip_bad_rows,
            report,
            counts=counts,
            cleared=cleared,
        )
        columns = [*written, *cleared]

        def converted() -> Iterator[pl.DataFrame]:
            offset = 0
            for batch in _batches(plan_, mapping, counted):
                rows = converter.convert(batch, offset)
                offset += batch.num_rows
                converter.account(rows)
                yield rows

        for rows in _prefetched(converted()):
            if conn is not None and rows.height:
                inserted, changed = store.upsert_samples(conn, rows.to_arrow(), columns=columns)
                report.inserted += inserted
                report.changed += changed
        if conn is not None:
            written = sorted(report.turbines)
            held = store.origins(conn)
            report.were_synthetic = [t for t in written if held.get(t) == store.SYNTHETIC]
            store.record_origin(conn, written, store.IMPORTED)  # the seed and feed never write them
            conn.commit()
    except BaseException:
        if raw is not None:
            raw.rollback()
        raise
    finally:
        if raw is not None:
            raw.close()
    report.new_turbines = sorted(set(report.turbines) - set(fleet))
    report.seconds = time.perf_counter() - began
    return report
