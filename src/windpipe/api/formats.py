"""Streaming encoders: JSON array, CSV and Arrow IPC stream, one record batch at a time."""

import io
from collections.abc import Iterable, Iterator
from enum import StrEnum

import polars as pl
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


def _frame(batch: pa.RecordBatch) -> pl.DataFrame:
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    return frame


def encode_json(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """``[{"timestamp": "...Z", ...}, ...]`` written batch by batch."""
    yield b"["
    first = True
    for batch in batches:
        if batch.num_rows == 0:
            continue
        text = (
            _frame(batch)
            .with_columns(pl.col("timestamp").dt.strftime(TIMESTAMP_FORMAT))
            .write_json()
        )
        body = text[1:-1].encode()  # strip the batch's own brackets
        yield body if first else b"," + body
        first = False
    yield b"]"


def encode_csv(batches: Iterable[pa.RecordBatch], columns: list[str]) -> Iterator[bytes]:
    """A header line, then rows; timestamps as ISO 8601 with Z."""
    yield (",".join(columns) + "\n").encode()
    for batch in batches:
        if batch.num_rows:
            text = _frame(batch).write_csv(include_header=False, datetime_format=TIMESTAMP_FORMAT)
            yield text.encode()


def encode_arrow(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    """An Arrow IPC stream; its end-of-stream marker is the proof the transfer is complete."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, schema) as writer:
        yield _drain(sink)
        for batch in batches:
            writer.write_batch(batch.replace_schema_metadata(None).cast(schema))
            yield _drain(sink)
    yield _drain(sink)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data
