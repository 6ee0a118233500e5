"""The API client against the real API: Arrow data, coverage, 4xx, 5xx, down, cut transfers."""

import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pyarrow as pa
import pytest
from sqlalchemy import Engine, text

from tests.conftest import CLEAN_DAYS, GAPPY_DAYS, LiveApi, serve
from tests.etl.conftest import day_start, kill_on_response
from windpipe.api import create_app
from windpipe.errors import (
    ApiRequestError,
    ApiUnavailableError,
    EtlError,
    IncompleteResponseError,
)
from windpipe.etl.extract import ARROW_EOS, ARROW_MEDIA_TYPE, ApiClient
from windpipe.settings import Settings
from windpipe.testing import ApiProcess, free_port

DAY = datetime(2024, 3, 1)
ARROW = {"content-type": ARROW_MEDIA_TYPE}


def test_fetch_returns_the_days_samples_as_arrow(client: ApiClient, seeded_source: Engine) -> None:
    table = client.fetch(DAY, DAY + timedelta(days=1), ["wind_speed", "power"])
    assert table.column_names == ["turbine", "timestamp", "wind_speed", "power"]
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.num_rows == 1440
    with seeded_source.connect() as conn:
        first = conn.execute(
            text('SELECT wind_speed, power FROM data WHERE "timestamp" = :t'),
            {"t": DAY.replace(tzinfo=UTC)},
        ).one()
    assert (table["wind_speed"][0].as_py(), table["power"][0].as_py()) == tuple(first)
    # Aware bounds name the same instants as naive UTC ones.
    aware = client.fetch(
        DAY.replace(tzinfo=UTC).astimezone(datetime.now().astimezone().tzinfo),
        DAY.replace(tzinfo=UTC) + timedelta(days=1),
        ["wind_speed", "power"],
    )
    assert aware.equals(table)
    frame = client.fetch_frame(DAY, DAY + timedelta(days=1), ["wind_speed", "power"])
    assert frame.height == 1440 and frame.columns == table.column_names


def test_coverage_reports_the_source_period(client: ApiClient, seeded_source: Engine) -> None:
    coverage = client.coverage()
    first, last, rows = coverage.first, coverage.last, coverage.rows
    with seeded_source.connect() as conn:
        expected = conn.execute(
            text('SELECT min("timestamp"), max("timestamp"), count(*) FROM data')
        ).one()
    assert (first, last, rows) == tuple(expected)
    assert first is not None and first.tzinfo is not None and first.utcoffset() == timedelta(0)
    assert first <= day_start(CLEAN_DAYS[0]) and last is not None
    assert last >= day_start(GAPPY_DAYS[1]) - timedelta(minutes=1)


def test_a_4xx_fails_at_once_with_the_apis_message(live_api: LiveApi) -> None:
    delays: list[float] = []
    with ApiClient(live_api.url, retries=4, sleep=delays.append) as client:
        with pytest.raises(ApiRequestError, match=r"422.*unknown variable 'rotor_speed'"):
            client.fetch(DAY, DAY + timedelta(days=1), ["wind_speed", "rotor_speed"])
        with pytest.raises(ApiRequestError, match="more than the maximum of 366 days"):
            client.fetch(DAY, DAY + timedelta(days=400), ["power"])
    assert delays == []  # no retry on a client error


def test_an_api_that_is_down_is_retried_with_bounded_backoff_then_reported() -> None:
    port = free_port()  # nothing listens there
    delays: list[float] = []
    with ApiClient(f"http://127.0.0.1:{port}", retries=4, sleep=delays.append) as client:
        with pytest.raises(ApiUnavailableError, match=r"unreachable.*after 5 attempts") as info:
            client.fetch(DAY, DAY + timedelta(days=1), ["power"])
        with pytest.raises(ApiUnavailableError):
            client.coverage()
    assert len(delays) == 8  # four retries for each of the two calls
    ceilings = [min(client.backoff_max, client.backoff_base * 2**i) for i in range(4)]
    for got, ceiling in zip(delays[:4], ceilings, strict=True):
        assert ceiling / 2 <= got <= ceiling
    assert str(info.value).count("\n") == 0 and f"127.0.0.1:{port}" in str(info.value)


@pytest.fixture
def dead_source_api(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real API whose source database does not exist: every /data is a 503."""
    socket_dir = tmp_path_factory.mktemp("nopg")
    app = create_app(
        settings, source_conninfo=f"postgresql://postgres@/windpipe_source?host={socket_dir}"
    )
    with serve(app) as api:
        yield api.url


def test_a_5xx_is_retried_then_reported_with_the_apis_detail(dead_source_api: str) -> None:
    delays: list[float] = []
    with (
        ApiClient(dead_source_api, retries=2, sleep=delays.append) as client,
        pytest.raises(ApiUnavailableError, match=r"answered 503.*source database does not answer"),
    ):
        client.fetch(DAY, DAY + timedelta(days=1), ["power"])
    assert len(delays) == 2


def _arrow_body(client: ApiClient) -> bytes:
    return client.fetch_ipc(DAY, DAY + timedelta(hours=1), ["power"])


def test_transient_failures_are_retried_until_a_whole_answer(client: ApiClient) -> None:
    # A flaky network cannot be produced on demand, so this one uses a transport that fails
    # twice (refused, then a 502) before relaying a real answer of the live API.
    body = _arrow_body(client)
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        if len(calls) == 2:
            return httpx.Response(502, json={"detail": "bad gateway"})
        return httpx.Response(200, content=body, headers=ARROW)

    delays: list[float] = []
    with ApiClient(
        "http://api.invalid", transport=httpx.MockTransport(flaky), sleep=delays.append
    ) as flaky_client:
        table = flaky_client.fetch(DAY, DAY + timedelta(hours=1), ["power"])
    assert table.num_rows == 60 and calls == ["/data"] * 3 and len(delays) == 2


def test_an_arrow_stream_without_its_end_marker_is_refused(client: ApiClient) -> None:
    # The real API always ends its stream; a proxy that drops the last bytes of a complete HTTP
    # answer is simulated by a transport returning the real body minus the end-of-stream marker.
    body = _arrow_body(client)
    assert body.endswith(ARROW_EOS)

    def clipped(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body[: -len(ARROW_EOS)], headers=ARROW)

    with (
        ApiClient(
            "http://api.invalid",
            retries=1,
            transport=httpx.MockTransport(clipped),
            sleep=lambda _: None,
        ) as c,
        pytest.raises(IncompleteResponseError, match="without the Arrow end-of-stream"),
    ):
        c.fetch(DAY, DAY + timedelta(hours=1), ["power"])


def test_an_answer_that_is_not_the_apis_arrow_is_refused(client: ApiClient) -> None:
    # Something else listening at the configured URL (here: a JSON body, then wrong columns).
    body = _arrow_body(client)

    def json_instead(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"timestamp": "2024-03-01T00:00:00Z"}])

    json_client = ApiClient("http://api.invalid", transport=httpx.MockTransport(json_instead))
    with json_client, pytest.raises(EtlError, match="application/json content type instead of"):
        json_client.fetch(DAY, DAY + timedelta(hours=1), ["power"])

    def arrow(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers=ARROW)

    other = ApiClient("http://api.invalid", transport=httpx.MockTransport(arrow))
    wrong = r"columns \['turbine', 'timestamp', 'power'\], not"
    with other, pytest.raises(EtlError, match=wrong):
        other.fetch_frame(DAY, DAY + timedelta(hours=1), ["wind_speed"])


@pytest.mark.slow
def test_the_api_process_killed_mid_transfer_is_an_incomplete_response(
    api_process: ApiProcess, one_second_days: tuple[date, date]
) -> None:
    first, last = one_second_days
    start, end = day_start(first), day_start(last) + timedelta(days=1)
    hooks = {"response": [kill_on_response(api_process)]}
    with ApiClient(api_process.url, retries=0, timeout=20, event_hooks=hooks) as client:
        began = time.monotonic()
        with pytest.raises(IncompleteResponseError, match="cut the transfer") as info:
            client.fetch(start, end, ["wind_speed", "power"])
    assert time.monotonic() - began < 15
    assert api_process.process.returncode is not None  # the server really died
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_an_api_that_stalls_mid_transfer_times_out_as_incomplete(
    api_process: ApiProcess, one_second_days: tuple[date, date]
) -> None:
    first, last = one_second_days
    start, end = day_start(first), day_start(last) + timedelta(days=1)

    def freeze(response: httpx.Response) -> None:
        os.kill(api_process.process.pid, signal.SIGSTOP)  # alive, connected, silent

    hooks = {"response": [freeze]}
    with ApiClient(api_process.url, retries=0, timeout=1.0, event_hooks=hooks) as client:
        began = time.monotonic()
        try:
            with pytest.raises(IncompleteResponseError, match=r"cut the transfer .*ReadTimeout"):
                client.fetch(start, end, ["wind_speed", "power"])
        finally:
            os.kill(api_process.process.pid, signal.SIGCONT)
    assert time.monotonic() - began < 10
