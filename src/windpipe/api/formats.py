"""Streaming encoders: JSON array, CSV and Arrow IPC stream, one record batch at a time.

Non-finite values (NaN, +Infinity, -Infinity, which a ``double precision`` column may hold) are
not dropped or changed, but JSON has no number for them:

- JSON: ``null``, as for a missing value (NULL). ``null`` means "missing or non-finite"; the other
  two formats tell them apart.
- CSV: ``NaN``, ``inf``, ``-inf``; a missing value is an empty field. Python's ``float()``,
  PyArrow, Polars and pandas read these spellings back as the IEEE values.
- Arrow: the IEEE values themselves; a missing value is a null.

``tests/api/test_non_finite.py`` pins each spelling, so a change of Polars' writers shows.
"""

import io
from enum import StrEnum

import polars as pl
import polars.selectors as cs
import pyarrow as pa

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"  # %.f prints nothing when there is no fraction


class DataFormat(StrEnum):
    """Response formats of ``GET /data``."""

    json = "json"
    csv = "csv"
    arrow = "arrow"


MEDIA_TYPES: dict[DataFormat, str] = {
    DataFormat.json: "application/json",
    DataFormat.csv: "text/csv; charset=utf-8",
    DataFormat.arrow: "application/vnd.apache.arrow.stream",
}


_ACCEPTED: dict[str, DataFormat] = {
    "application/vnd.apache.arrow.stream": DataFormat.arrow,
    "application/vnd.apache.arrow": DataFormat.arrow,
    "text/csv": DataFormat.csv,
    "application/json": DataFormat.json,
}


def negotiate(accept: str | None) -> DataFormat:
    """The format an ``Accept`` header prefers (its q-values honoured); JSON when none is named."""
    best: tuple[float, DataFormat] | None = None
    for media_range in (accept or "").lower().split(","):
        media_type, *params = (part.strip() for part in media_range.split(";"))
        chosen = _ACCEPTED.get(media_type)
        if chosen is None:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (best is None or quality > best[0]):  # ties: the first named wins
            best = (quality, chosen)
    return best[1] if best else DataFormat.json


def _frame(data: pa.RecordBatch | pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(data)
    assert isinstance(frame, pl.DataFrame)
    return frame


class Encoder:
    """One answer's encoder: ``head()``, then ``page(table)`` per page read, then ``tail()``."""

    def __init__(self, fmt: DataFormat, schema: pa.Schema) -> None:
        self.format = fmt
        self.schema = schema
        self._first = True
        self._sink = io.BytesIO()
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def head(self) -> bytes:
        """What comes before the rows: ``[``, the CSV header, or the Arrow schema."""
        if self.format is DataFormat.json:
            return b"["
        if self.format is DataFormat.csv:
            return (",".join(self.schema.names) + "\n").encode()
        self._writer = pa.ipc.new_stream(self._sink, self.schema)
        return _drain(self._sink)

    def page(self, table: pa.Table) -> bytes:
        """The rows of ``table``, encoded."""
        if table.num_rows == 0:
            return b""
        if self.format is DataFormat.json:
            text = (
                _frame(table).with_columns(cs.datetime().dt.strftime(TIMESTAMP_FORMAT)).write_json()
            )
            body = text[1:-1].encode()  # strip the page's own brackets
            out = body if self._first else b"," + body
            self._first = False
            return out
        if self.format is DataFormat.csv:
            text = _frame(table).write_csv(include_header=False, datetime_format=TIMESTAMP_FORMAT)
            return text.encode()
        assert self._writer is not None
        for batch in table.to_batches():
            self._writer.write_batch(batch.replace_schema_metadata(None).cast(self.schema))
        return _drain(self._sink)

    def tail(self) -> bytes:
        """What closes the answer: ``]``, nothing, or the Arrow end-of-stream marker."""
        if self.format is DataFormat.json:
            return b"]"
        if self.format is DataFormat.csv:
            return b""
        assert self._writer is not None
        self._writer.close()
        return _drain(self._sink)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data
