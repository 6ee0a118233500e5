"""The API client of the ETL: Arrow IPC over one reused httpx connection, with bounded retries.

Connection errors, timeouts, cut transfers, 5xx, 408 and 429 answers are retried with exponential
backoff and jitter; any other 4xx fails at once with the API's own ``detail``. A body is accepted
only when the HTTP transfer completed *and* the Arrow stream ends with its end-of-stream marker, so
a day is never loaded from a partial response."""

import itertools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx

from windpipe.catalog import PERIOD_STATISTICS, Coverage, EventChange, statistic_column
from windpipe.errors import (
    ApiRequestError,
    ApiUnavailableError,
    EtlError,
    IncompleteResponseError,
    first_line,
)

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

#: The last 8 bytes of every complete Arrow IPC stream: continuation token, then a zero length.
ARROW_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"
ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
#: Client errors that say "not now" rather than "never": request timeout, too many requests.
RETRYABLE_4XX = frozenset({408, 429})


class _RetryableError(Exception):
    """An attempt failed in a way that another attempt may fix; carries the final error to raise."""

    def __init__(self, error: EtlError) -> None:
        super().__init__(str(error))
        self.error = error


def _moment(value: datetime) -> str:
    """A query-string timestamp: naive means UTC; aware values are converted to UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat()


def _detail(response: httpx.Response) -> str:
    """The API's ``detail`` message, or the start of the body when it is not the API's JSON."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else str(detail)
    text = response.text.strip().replace("\n", " ")
    return text[:200] or response.reason_phrase or "no detail"


class ApiClient:
    """A client of the connector API that wraps one reused ``httpx.Client``."""

    #: First backoff delay in seconds; each retry doubles it, up to ``backoff_max``, with jitter.
    backoff_base: float = 0.2
    backoff_max: float = 5.0

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        retries: int = 4,
        transport: httpx.BaseTransport | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self._sleep = sleep  # how a retry waits; tests pass one that records instead
        self._http = httpx.Client(
            base_url=self.base_url,
            # Connecting to a healthy API is instant; a long connect timeout only delays the error.
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            event_hooks=event_hooks,
            follow_redirects=False,
            # Every request goes to base_url and redirects are not followed, so a plain-http API
            # needs no TLS context (building one loads the CA bundle: ~20 ms of CLI start-up).
            verify=self.base_url.startswith("https://"),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def fetch(
        self,
        start: datetime,
        end: datetime,
        variables: Sequence[str],
        turbines: Sequence[str] | None = None,
    ) -> "pa.Table":
        """Samples in ``[start, end)`` (naive = UTC) of ``turbines`` (None: all), by turbine and
        time: ``turbine``, ``timestamp`` and ``variables`` columns."""
        import pyarrow as pa

        body = self.fetch_ipc(start, end, variables, turbines)
        try:
            table = pa.ipc.open_stream(body).read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise self._malformed(start, end, exc) from exc
        self._check_columns(table.column_names, variables)
        return table

    def fetch_frame(
        self,
        start: datetime,
        end: datetime,
        variables: Sequence[str],
        turbines: Sequence[str] | None = None,
    ) -> "pl.DataFrame":
        """As :meth:`fetch`, decoded straight into Polars (no PyArrow import on the hot path)."""
        return self._frame(start, end, variables, turbines, last=False)

    def fetch_last(
        self,
        start: datetime,
        end: datetime,
        variables: Sequence[str],
        turbines: Sequence[str] | None = None,
    ) -> "pl.DataFrame":
        """Per turbine of ``turbines`` (None: all), its latest sample in ``[start, end)`` (naive
        = UTC) whose every variable is non-null: at most one row each, the columns of
        :meth:`fetch_frame` (e.g. a counter's last reading before a day starts)."""
        return self._frame(start, end, variables, turbines, last=True)

    def _frame(
        self,
        start: datetime,
        end: datetime,
        variables: Sequence[str],
        turbines: Sequence[str] | None,
        *,
        last: bool,
    ) -> "pl.DataFrame":
        import polars as pl

        body = self.fetch_ipc(start, end, variables, turbines, last=last)
        try:
            frame = pl.read_ipc_stream(body)
        except (OSError, pl.exceptions.ComputeError) as exc:
            raise self._malformed(start, end, exc) from exc
        self._check_columns(frame.columns, variables)
        return frame

    def _malformed(self, start: datetime, end: datetime, exc: Exception) -> EtlError:
        return IncompleteResponseError(
            f"the API at {self.base_url} sent a malformed Arrow stream for "
            f"[{_moment(start)}, {_moment(end)}): {first_line(exc)}"
        )

    def _check_columns(self, columns: Sequence[str], variables: Sequence[str]) -> None:
        """``turbine``, ``timestamp``, then each variable followed by those of its period
        statistics the source holds (``wind_speed__min``, ...), in the API's order."""
        expected = ["turbine", "timestamp", *variables]
        served = iter(columns)
        ok = list(itertools.islice(served, 2)) == expected[:2]
        rest = list(served)
        for variable in variables:
            if not ok or not rest or rest.pop(0) != variable:
                ok = False
                break
            allowed = [statistic_column(variable, s) for s in PERIOD_STATISTICS if s != "mean"]
            while rest and rest[0] in allowed:
                allowed = allowed[allowed.index(rest.pop(0)) + 1 :]  # in order, each once
        if not ok or rest:
            raise EtlError(
                f"the API at {self.base_url} answered with columns {list(columns)}, "
                f"not {expected} (each variable possibly followed by its period statistics, "
                "v__min, v__max, v__std, v__count); is it a windpipe connector API of the same "
                "version?"
            )

    def fetch_ipc(
        self,
        start: datetime,
        end: datetime,
        variables: Sequence[str],
        turbines: Sequence[str] | None = None,
        *,
        last: bool = False,
    ) -> bytes:
        """The whole Arrow IPC stream of ``[start, end)``, retried until complete (``last``:
        only each turbine's latest complete sample)."""
        params = {
            "start": _moment(start),
            "end": _moment(end),
            "variables": ",".join(variables),
            **({"turbines": ",".join(turbines)} if turbines else {}),
            **({"last": "true"} if last else {}),
            "format": "arrow",
        }
        what = f"/data [{params['start']}, {params['end']})" + (" last" if last else "")
        return self._with_retries(lambda: self._get_arrow(params, what))

    def coverage(self) -> Coverage:
        """First and last sample (aware UTC, None when empty) and the row count of the source."""
        body = self._with_retries(lambda: self._get_json("/coverage"))
        if not isinstance(body, dict) or "rows" not in body:
            raise ApiRequestError(f"the API at {self.base_url} sent an unexpected /coverage body")
        first, last = (_parse_utc(body.get(key)) for key in ("first", "last"))
        return Coverage(first, last, int(body["rows"]))

    def turbines(self) -> list[str]:
        """The turbines the source holds samples of, as ``/turbines`` lists them."""
        body = self._with_retries(lambda: self._get_json("/turbines"))
        try:
            return [str(row["id"]) for row in body if int(row.get("rows") or 0) > 0]
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise ApiRequestError(
                f"the API at {self.base_url} sent an unexpected /turbines body: {exc}"
            ) from None

    def fingerprints(
        self, first: date, last: date, turbines: Sequence[str] | None = None
    ) -> dict[tuple[str, date], str]:
        """Each (turbine, UTC day) of ``[first, last]`` that holds or held samples: its
        fingerprint (``samples:checksum``). A pair not listed holds nothing (``0:0``).

        A year per request: the API refuses spans over ten years, a backfill may ask for more.
        """
        prints: dict[tuple[str, date], str] = {}
        while first <= last:
            upto = min(last, first + timedelta(days=365))
            params = {"start": first.isoformat(), "end": (upto + timedelta(days=1)).isoformat()}
            if turbines is not None:
                params["turbines"] = ",".join(turbines)
            body = self._with_retries(partial(self._get_json, "/fingerprints", params))
            try:
                prints.update(
                    {
                        (str(row["turbine"]), date.fromisoformat(row["day"])): str(
                            row["fingerprint"]
                        )
                        for row in body
                    }
                )
            except (TypeError, KeyError, ValueError) as exc:
                raise ApiRequestError(
                    f"the API at {self.base_url} sent an unexpected /fingerprints body: {exc}"
                ) from None
            first = upto + timedelta(days=1)
        return prints

    # -- one attempt each ------------------------------------------------------------------------

    def _get_arrow(self, params: dict[str, str], what: str) -> bytes:
        try:
            with self._http.stream(
                "GET", "/data", params=params, headers={"Accept": ARROW_MEDIA_TYPE}
            ) as response:
                self._check_status(response, what)
                media_type = response.headers.get("content-type", "").split(";")[0].strip()
                if media_type != ARROW_MEDIA_TYPE:
                    raise EtlError(
                        f"the API at {self.base_url} answered {what} with {media_type or 'no'} "
                        f"content type instead of {ARROW_MEDIA_TYPE}; is it a windpipe API?"
                    )
                try:
                    body = response.read()
                except httpx.TransportError as exc:  # closed, reset or stalled mid-body
                    raise _RetryableError(self._cut(what, exc)) from exc
        except httpx.RemoteProtocolError as exc:
            raise _RetryableError(self._cut(what, exc)) from exc
        except httpx.TransportError as exc:
            raise _RetryableError(self._unreachable(exc)) from exc
        if not body.endswith(ARROW_EOS):
            raise _RetryableError(
                IncompleteResponseError(
                    f"the API at {self.base_url} sent {len(body):,} bytes for {what} without the "
                    "Arrow end-of-stream marker (partial response)"
                )
            )
        return body

    def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        try:
            response = self._http.get(path, params=params)
            self._check_status(response, path)
            return response.json()
        except ValueError as exc:
            raise _RetryableError(
                IncompleteResponseError(
                    f"the API at {self.base_url} sent invalid JSON for {path}: {first_line(exc)}"
                )
            ) from exc
        except httpx.RemoteProtocolError as exc:
            raise _RetryableError(self._cut(path, exc)) from exc
        except httpx.TransportError as exc:
            raise _RetryableError(self._unreachable(exc)) from exc

    def _check_status(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        response.read()
        detail = _detail(response)
        if status >= 500 or status in RETRYABLE_4XX:
            raise _RetryableError(
                ApiUnavailableError(
                    f"the API at {self.base_url} answered {status} for {what}: {detail}"
                )
            )
        raise ApiRequestError(f"the API rejected {what} ({status}): {detail}")

    def _cut(self, what: str, exc: Exception) -> IncompleteResponseError:
        return IncompleteResponseError(
            f"the API at {self.base_url} cut the transfer of {what} "
            f"({type(exc).__name__}: {first_line(exc)})"
        )

    def _unreachable(self, exc: Exception) -> ApiUnavailableError:
        return ApiUnavailableError(
            f"the API at {self.base_url} is unreachable ({type(exc).__name__}: {first_line(exc)}); "
            "is `windpipe api` running and WINDPIPE_API_URL right?"
        )

    def _with_retries(self, attempt: Callable[[], Any]) -> Any:
        tries = self.retries + 1
        for number in range(1, tries + 1):
            try:
                return attempt()
            except _RetryableError as failure:
                if number == tries:
                    error = failure.error
                    suffix = f" (after {tries} attempts)" if tries > 1 else ""
                    raise type(error)(f"{error}{suffix}") from failure.__cause__
                self._sleep(self._backoff(number))
        raise AssertionError("unreachable")

    def _backoff(self, number: int) -> float:
        """Exponential backoff with jitter: between half and all of base * 2^(n-1), capped."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (number - 1))
        return ceiling * random.uniform(0.5, 1.0)

    # -- events ----------------------------------------------------------------------------------

    def events(
        self, start: datetime, end: datetime, turbines: Sequence[str] | None = None
    ) -> "pl.DataFrame":
        """Events overlapping ``[start, end)`` (naive = UTC) of ``turbines`` (None: all), as
        ``/events`` lists them: ``turbine``, ``start``, ``end`` (null: ongoing), ``code``,
        ``message``; times aware UTC."""
        import polars as pl

        params = {"start": _moment(start), "end": _moment(end), "format": "json"}
        if turbines is not None:
            params["turbines"] = ",".join(turbines)
        body = self._with_retries(partial(self._get_json, "/events", params))
        try:
            rows = [
                {
                    "turbine": str(row["turbine"]),
                    "start": _parse_utc(row["start"]),
                    "end": _parse_utc(row["end"]),
                    "code": str(row["code"]),
                    "message": row["message"],
                }
                for row in body
            ]
        except (TypeError, KeyError, ValueError) as exc:
            raise ApiRequestError(
                f"the API at {self.base_url} sent an unexpected /events body: {exc}"
            ) from None
        return pl.DataFrame(
            rows,
            schema={
                "turbine": pl.String,
                "start": pl.Datetime("us", "UTC"),
                "end": pl.Datetime("us", "UTC"),
                "code": pl.String,
                "message": pl.String,
            },
        )

    def event_changes(self, after: int | None, limit: int = 1000) -> tuple[int, list[EventChange]]:
        """The newest change of the events log, and the changes after ``after`` (None: none,
        only the newest's id: where a new reader starts), oldest first, as
        ``/events/changes`` lists them."""
        params = {"limit": str(limit)} | ({} if after is None else {"after": str(after)})
        body = self._with_retries(partial(self._get_json, "/events/changes", params))
        try:
            changes = [
                EventChange(
                    id=int(row["id"]),
                    turbine=None if row["turbine"] is None else str(row["turbine"]),
                    first=_parse_utc(row["first"]),
                    last=_parse_utc(row["last"]),
                )
                for row in body["changes"]
            ]
            return int(body["head"]), changes
        except (TypeError, KeyError, ValueError) as exc:
            raise ApiRequestError(
                f"the API at {self.base_url} sent an unexpected /events/changes body: {exc}; "
                "is it older than this ETL? (the route came with source migration s0006)"
            ) from None


def _parse_utc(value: object) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
