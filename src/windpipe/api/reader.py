"""Reads the source table as Arrow record batches over pooled ADBC connections.

ADBC streams PostgreSQL's binary COPY output straight into Arrow (~6 M rows/s here). The SQL is
the source store's (``windpipe.source.store``), which owns every statement on the source table.
"""

import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from windpipe.catalog import Coverage
from windpipe.errors import SourceUnavailableError, first_line
from windpipe.source.store import COVERAGE_SQL, PING_SQL, select_range_sql

# One query covers at most this span, so a year of 1 s data streams in bounded memory. Arrow
# passes batches through as they are; the text formats expand each chunk several times over
# while encoding it, so they read smaller ones.
CHUNK = timedelta(days=1)
TEXT_CHUNK = timedelta(hours=6)


class SourceReader:
    """A small pool of ADBC connections to the source database."""

    def __init__(self, conninfo: str, *, max_idle: int = 4) -> None:
        self._conninfo = conninfo
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue(maxsize=max_idle)
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        import adbc_driver_postgresql.dbapi as adbc

        try:
            return adbc.connect(self._conninfo, autocommit=True)
        except Exception as exc:  # ADBC raises its own OperationalError family
            raise SourceUnavailableError(first_line(exc)) from exc

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """Borrow a connection; one that failed is closed, not returned to the pool."""
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        except BaseException:
            _close_quietly(conn)
            raise
        else:
            try:
                self._idle.put_nowait(conn)
            except queue.Full:
                _close_quietly(conn)

    def _query(self, sql: str) -> pa.Table:
        for attempt in (1, 2):  # a pooled connection may have died with a server restart
            try:
                with self.connection() as conn, conn.cursor() as cur:
                    cur.execute(sql)
                    return cur.fetch_arrow_table()
            except SourceUnavailableError:
                raise
            except Exception as exc:
                if attempt == 2:
                    raise SourceUnavailableError(first_line(exc)) from exc
        raise AssertionError("unreachable")

    def read_range(
        self,
        variables: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        chunk: timedelta = CHUNK,
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of ``[start, end)`` in timestamp order, one query per ``chunk``."""
        bounds = []
        lo = start
        while lo < end:
            hi = end if end - lo <= chunk else lo + chunk  # no lo + chunk past year 9999
            bounds.append((lo, hi))
            lo = hi
        if not bounds:
            return
        # Read one chunk ahead on a second connection, so the database works while we send.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
            pending = pool.submit(self._query, select_range_sql(variables, *bounds[0]))
            for nxt in [*bounds[1:], None]:
                table = pending.result()
                if nxt is not None:
                    pending = pool.submit(self._query, select_range_sql(variables, *nxt))
                yield from table.to_batches()

    def coverage(self) -> Coverage:
        """First and last timestamp and row count."""
        row = self._query(COVERAGE_SQL).to_pylist()[0]
        return Coverage(row["first"], row["last"], int(row["rows"]))

    def ping(self) -> None:
        """Raise SourceUnavailableError unless the database answers a trivial query."""
        self._query(PING_SQL)

    def close(self) -> None:
        """Close every idle connection."""
        while True:
            try:
                _close_quietly(self._idle.get_nowait())
            except queue.Empty:
                return


def _close_quietly(conn: Any) -> None:
    with suppress(Exception):  # closing a broken connection may fail; nothing to do
        conn.close()
