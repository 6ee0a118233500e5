"""The read-only pool both databases are read through: Arrow tables over bounded ADBC connections.

The API reads the source (``/data``, ``/fingerprints``) with one :class:`ReadOnlyPool`, made at
start, and the target (``/aggregates``, the dashboard) with a second, made on first use so an API
whose target is away still serves ``/data``: :func:`open_session` leases it as a
:class:`TargetSession`, whose errors name the target (``TargetUnavailableError``).

ADBC streams PostgreSQL's binary COPY output straight into Arrow (~6 M rows/s here). The SQL is
its owners': ``windpipe.source.store`` for the source, ``windpipe.warehouse.queries`` for the
target.

The pool never holds more than ``size`` connections: a request borrows one for its whole answer
(its read-ahead runs on that same connection) and waits at most ``acquire_timeout`` for it, after
which it is told to come back (:class:`~windpipe.errors.ApiBusyError`, a 503 with Retry-After).
Every session is read-only with a ``statement_timeout``. ``/health`` has a connection of its own,
so it answers promptly while the pool is busy. Connections found dead (a database restart kills
them all) are dropped, and the query is retried once on a new one.

A query the database refuses for what it is (a column or table missing, a type changed: SQLSTATE
classes 42 and 22) is not a dead connection: it raises :class:`~windpipe.errors.SourceQueryError`,
never "does not answer". The source's pool also holds the table to its schema contract
(``windpipe.source.contract``): checked on ``/health``'s connection, the answer kept a couple of
seconds, and a lease refused with :class:`~windpipe.errors.SourceSchemaError` while it is broken.
"""

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from typing import Any

import polars as pl
import pyarrow as pa
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from windpipe.catalog import Variable
from windpipe.errors import (
    ApiBusyError,
    SourceQueryError,
    SourceSchemaError,
    SourceUnavailableError,
    TargetUnavailableError,
    WindpipeError,
    first_line,
)
from windpipe.settings import Settings
from windpipe.source.contract import Breach, breaches, describe
from windpipe.source.store import COLUMN_TYPES_SQL, COUNT_SQL, COVERAGE_ESTIMATE_SQL, PING_SQL
from windpipe.warehouse import queries

_log = logging.getLogger(__name__)

#: Below this planner estimate the row count is exact (counting takes a few milliseconds).
EXACT_COUNT_BELOW = 200_000
#: SQLSTATE of a query cancelled by statement_timeout or a cancel request: not a dead connection.
_QUERY_CANCELED = "57014"
#: SQLSTATE classes of a query refused for what it asks (42: a column or table missing, no
#: privilege; 22: a value of another type): the schema changed, the connection is fine.
_REFUSED_CLASSES = ("42", "22")
#: Seconds a schema-contract answer is kept for the data routes (``/health`` always asks anew).
CONTRACT_TTL = 2.0


class ReadOnlyPool:
    """A bounded pool of read-only ADBC connections to one database (the source or the target)."""

    def __init__(
        self,
        conninfo: str,
        *,
        size: int = 8,
        acquire_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        variables: Iterable[Variable] | None = None,
        contract_ttl: float | None = None,
    ) -> None:
        """``variables``: the configured signals, whose columns the schema contract covers; None
        (a pool of the target) checks no contract. ``contract_ttl``: default CONTRACT_TTL."""
        self._conninfo = conninfo
        self.size = size
        self.acquire_timeout = acquire_timeout
        self._setup = (
            f"SET statement_timeout = {int(statement_timeout * 1000)}",
            "SET default_transaction_read_only = on",
        )
        self._slots = asyncio.Semaphore(size)
        self._idle: deque[Any] = deque()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="source")
        self._health_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")
        self._health_lock = asyncio.Lock()
        self._contract_lock = asyncio.Lock()
        self._health_conn: Any = None
        self._variables = None if variables is None else list(variables)
        self._contract_ttl = CONTRACT_TTL if contract_ttl is None else contract_ttl
        #: The last contract answer (None: unknown, the database did not answer) and its time.
        self._contract: tuple[float, list[Breach] | None] | None = None
        #: Connections opened and queries run since start (for tests and benchmarks).
        self.sessions_opened = 0
        self.queries_run = 0

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> Any:
        import adbc_driver_postgresql.dbapi as adbc

        try:
            conn = adbc.connect(self._conninfo, autocommit=True)
        except Exception as exc:  # ADBC raises its own OperationalError family
            raise SourceUnavailableError(first_line(exc)) from exc
        try:
            with conn.cursor() as cur:
                for statement in self._setup:
                    cur.execute(statement)
        except Exception as exc:
            _close_quietly(conn)
            raise SourceUnavailableError(first_line(exc)) from exc
        with self._lock:
            self.sessions_opened += 1
        return conn

    def _checkout(self) -> tuple[Any, bool]:
        """An idle connection, or a new one; and whether it is new."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), False
        return self._connect(), True

    def _checkin(self, conn: Any) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return
        _close_quietly(conn)

    def _drop_idle(self) -> None:
        """Close every idle connection: after one was found dead, the others likely are too."""
        with self._lock:
            dead, self._idle = list(self._idle), deque()
        for conn in dead:
            _close_quietly(conn)

    def _run(self, holder: "_Holder", sql: str) -> pa.Table:
        """Run ``sql`` on the holder's connection (borrowed on first use); in a worker thread."""
        for attempt in (1, 2):
            fresh = False
            if holder.conn is None:
                holder.conn, fresh = self._checkout()
            with self._lock:
                self.queries_run += 1
            try:
                return _fetch_or_close(holder.conn, sql)
            except Exception as exc:
                holder.conn = None
                if _refused(exc):
                    raise SourceQueryError(first_line(exc)) from exc
                canceled = getattr(exc, "sqlstate", None) == _QUERY_CANCELED
                if fresh or canceled or attempt == 2:
                    raise SourceUnavailableError(first_line(exc)) from exc
                # A pooled connection died (a database restart): retry once on a new one.
                _log.info("dropping dead pooled connections: %s", first_line(exc))
                self._drop_idle()
        raise AssertionError("unreachable")

    # -- what the routes use -------------------------------------------------------------------

    async def lease(self) -> "Lease":
        """Reserve one connection for a request; ApiBusyError when none frees up in time,
        SourceSchemaError while the table breaks its schema contract."""
        await self.require_contract()
        try:
            await asyncio.wait_for(self._slots.acquire(), self.acquire_timeout)
        except TimeoutError:
            raise ApiBusyError(
                f"all {self.size} database connections are busy; retry in a moment"
            ) from None
        return Lease(self)

    async def coverage(self) -> tuple[Any, Any, int, bool]:
        """First and last timestamp, row count and whether the count is exact."""
        lease = await self.lease()
        try:
            row = (await lease.query(COVERAGE_ESTIMATE_SQL)).to_pylist()[0]
            estimate = int(row["estimate"] if row["estimate"] is not None else -1)
            if row["first"] is None:
                return None, None, 0, True
            if estimate < EXACT_COUNT_BELOW:
                rows = (await lease.query(COUNT_SQL)).to_pylist()[0]["rows"]
                return row["first"], row["last"], int(rows), True
            return row["first"], row["last"], estimate, False
        finally:
            lease.release()

    async def ping(self, timeout: float = 3.0) -> None:
        """Raise SourceUnavailableError unless the database answers within ``timeout``."""
        await self._ask(PING_SQL, timeout)

    async def contract(self, timeout: float = 3.0) -> list[Breach]:
        """How the source table breaks its schema contract now (empty: it keeps it), asked anew;
        SourceUnavailableError unless the database answers within ``timeout``."""
        if self._variables is None:
            return []
        rows = (await self._ask(COLUMN_TYPES_SQL, timeout)).to_pylist()
        found = breaches(
            {r["name"]: r["type"] for r in rows},
            self._variables,
            unreadable=[r["name"] for r in rows if not r["readable"]],
        )
        self._remember(found)
        return found

    async def require_contract(self) -> None:
        """Raise SourceSchemaError while the table breaks its contract (an answer at most
        ``contract_ttl`` seconds old); pass when it keeps it or the database does not answer
        (the query that follows then says so)."""
        if self._variables is None:
            return
        known = self._contract
        if known is None or time.monotonic() - known[0] >= self._contract_ttl:
            async with self._contract_lock:
                known = self._contract  # another request may have asked meanwhile
                if known is None or time.monotonic() - known[0] >= self._contract_ttl:
                    try:
                        await self.contract()
                    except SourceUnavailableError:
                        self._contract = (time.monotonic(), None)
                    known = self._contract
        assert known is not None
        if known[1]:
            raise SourceSchemaError(describe(known[1]))

    def _remember(self, found: list[Breach]) -> None:
        """Keep the answer; log when the table starts or stops breaking its contract."""
        before = self._contract[1] if self._contract is not None else None
        self._contract = (time.monotonic(), found)
        if found and found != before:
            _log.error("%s", describe(found))
        elif not found and before:
            _log.warning("the source table keeps its schema contract again")

    async def _ask(self, sql: str, timeout: float) -> pa.Table:
        """``sql``'s result on ``/health``'s own connection, within ``timeout``."""
        async with self._health_lock:
            future = self._health_executor.submit(self._health_query, sql)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
            except TimeoutError:
                raise SourceUnavailableError(f"no answer within {timeout:g} s") from None

    def _health_query(self, sql: str) -> pa.Table:
        for attempt in (1, 2):
            fresh = self._health_conn is None
            if fresh:
                self._health_conn = self._connect()
            try:
                return _fetch_or_close(self._health_conn, sql)
            except Exception as exc:
                self._health_conn = None
                if fresh or attempt == 2:
                    raise SourceUnavailableError(first_line(exc)) from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every idle connection and stop the worker threads."""
        self._drop_idle()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._health_executor.shutdown(wait=False, cancel_futures=True)
        if self._health_conn is not None:
            _close_quietly(self._health_conn)
            self._health_conn = None


class _Holder:
    """The connection a lease holds (None until its first query borrows one)."""

    conn: Any = None


class Lease:
    """One of the pool's slots, held for one request; release it exactly once (idempotent)."""

    def __init__(self, reader: ReadOnlyPool) -> None:
        self._reader = reader
        self._holder = _Holder()
        self._pending: Future[pa.Table] | None = None
        self._loop = asyncio.get_running_loop()
        self._released = False

    def submit(self, sql: str) -> "asyncio.Future[pa.Table]":
        """Start ``sql`` on this lease's connection (one at a time); await the result."""
        if self._released:
            raise RuntimeError("the lease was released")
        self._pending = self._reader._executor.submit(self._reader._run, self._holder, sql)
        result = asyncio.wrap_future(self._pending)
        # A read-ahead abandoned by a client that left fails (cancelled): that is expected.
        result.add_done_callback(_consume)
        return result

    async def query(self, sql: str) -> pa.Table:
        """The result of ``sql`` as an Arrow table."""
        return await self.submit(sql)

    def release(self) -> None:
        """Give the connection back (or, mid-query, cancel the query and close it when it stops)."""
        if self._released:
            return
        self._released = True
        pending = self._pending
        if pending is not None and not pending.done():
            # The client went away while a query runs: stop it; clean up when the thread is done.
            conn = self._holder.conn
            if conn is not None:
                with suppress(Exception):
                    conn.adbc_cancel()
            pending.add_done_callback(self._after_cancel)
            return
        if self._holder.conn is not None:
            self._reader._checkin(self._holder.conn)
            self._holder.conn = None
        self._reader._slots.release()

    def _after_cancel(self, _: object) -> None:
        if self._holder.conn is not None:
            _close_quietly(self._holder.conn)  # its state after a cancel is not worth trusting
            self._holder.conn = None
        release: Callable[[], None] = self._reader._slots.release
        with suppress(RuntimeError):  # the loop is closed: the app is shutting down
            self._loop.call_soon_threadsafe(release)


def _consume(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()  # marks it retrieved; whoever awaits it still gets it


def _refused(exc: BaseException) -> bool:
    """Whether the database refused the query for what it asks (not a connection failure)."""
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state[:2] in _REFUSED_CLASSES


def _close_quietly(conn: Any) -> None:
    with suppress(Exception):  # closing a broken connection may fail; nothing to do
        conn.close()


def _fetch_or_close(conn: Any, sql: str) -> pa.Table:
    """``sql``'s result on ``conn``; on any failure ``conn`` is closed (it may be broken) and the
    error raised."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table()
    except Exception:
        _close_quietly(conn)
        raise


# -- the target's pool and a request's session on it ------------------------------------------


def init_target(app: FastAPI, conninfo: str | None) -> None:
    """Prepare ``app`` to read the target at ``conninfo`` (None: the settings' read-only URL)."""
    app.state.target_conninfo = conninfo
    app.state.target_pool = None
    app.state.target_ready = False
    app.state.target_lock = asyncio.Lock()


def close_target(app: FastAPI) -> None:
    """Close the target pool if one was made."""
    pool: ReadOnlyPool | None = getattr(app.state, "target_pool", None)
    if pool is not None:
        pool.close()
        app.state.target_pool = None


def _default_conninfo(settings: Settings) -> str:
    from windpipe.postgres import api_target_database_url, libpq_conninfo

    return libpq_conninfo(api_target_database_url(settings))


async def _target_pool(app: FastAPI) -> ReadOnlyPool:
    pool: ReadOnlyPool | None = app.state.target_pool
    if pool is not None:
        return pool
    async with app.state.target_lock:
        if app.state.target_pool is None:
            settings: Settings = app.state.settings
            conninfo = app.state.target_conninfo
            if conninfo is None:
                try:
                    conninfo = await run_in_threadpool(_default_conninfo, settings)
                except WindpipeError as exc:
                    raise TargetUnavailableError(str(exc)) from exc
            app.state.target_pool = ReadOnlyPool(
                conninfo,
                size=max(1, min(4, settings.api_pool_size)),
                acquire_timeout=settings.api_pool_timeout_seconds,
                statement_timeout=settings.api_statement_timeout_seconds,
            )
        pool = app.state.target_pool
        assert pool is not None
        return pool


class TargetSession:
    """One request's connection to the target: ``await session.query(sql)`` -> Arrow table."""

    def __init__(self, lease: Lease, ready: bool) -> None:
        self.lease = lease
        #: Whether the target has its tables (a fresh one has none until the first ETL run).
        self.ready = ready

    async def query(self, sql: str) -> pa.Table:
        """The result of ``sql``; TargetUnavailableError when the target does not answer."""
        try:
            return await self.lease.query(sql)
        except (
            SourceUnavailableError,
            SourceQueryError,
        ) as exc:  # the pool's own names
            raise TargetUnavailableError(str(exc)) from exc

    async def frame(self, sql: str) -> pl.DataFrame:
        """The result of ``sql`` as a Polars frame."""
        frame = pl.from_arrow(await self.query(sql))
        assert isinstance(frame, pl.DataFrame)
        return frame


async def open_session(request: Request) -> TargetSession:
    """Lease a target connection for this request (release it with ``session.lease.release()``)."""
    app = request.app
    pool = await _target_pool(app)
    lease = await pool.lease()
    session = TargetSession(lease, ready=app.state.target_ready)
    try:
        if not session.ready:
            table = await session.query(queries.HAS_TABLES_SQL)
            session.ready = app.state.target_ready = bool(table.column("ready")[0].as_py())
    except BaseException:
        lease.release()
        raise
    return session


@asynccontextmanager
async def target_session(request: Request) -> AsyncIterator[TargetSession]:
    """A target session for the block."""
    session = await open_session(request)
    try:
        yield session
    finally:
        session.lease.release()
