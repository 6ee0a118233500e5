"""``GET /events`` on a real server, reading the source as the API's read-only role: the overlap
of ``[start, end)``, ongoing events, the three formats, validation, and ``ApiClient.events``."""

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl
import pyarrow as pa
import pytest
from sqlalchemy.engine import URL

from tests.conftest import LiveApi, new_database, serve, utc
from windpipe.api import create_app
from windpipe.etl.extract import ApiClient
from windpipe.postgres import ensure_reader_role, libpq_conninfo
from windpipe.settings import Settings
from windpipe.source.events import import_events
from windpipe.source.store import ensure_schema

READER = "windpipe_events_reader"
EVENTS = """turbine,start,end,code,message
WTG01,2024-06-01T08:00:00Z,2024-06-01T09:00:00Z,101,Service
WTG01,2024-06-01T10:00:00Z,2024-06-01T10:30:00Z,205,Grid fault
WTG01,2024-06-01T12:00:00Z,,300,Stopped by owner
WTG02,2024-05-31T22:00:00Z,2024-06-01T10:00:00Z,101,
"""


@pytest.fixture(scope="module")
def api(
    settings: Settings, source_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    with new_database(source_url, "windpipe_events_api") as engine:
        # The role first, the table after (as a deployment upgraded to s0005 meets it): the
        # default privileges must let the reader see a table the writer creates later.
        ensure_reader_role(engine, READER, None)
        ensure_schema(engine)
        path: Path = tmp_path_factory.mktemp("events") / "events.csv"
        path.write_text(EVENTS)
        import_events(path, engine=engine)
        reader = engine.url.set(username=READER, password=None)
        app = create_app(settings, source_conninfo=libpq_conninfo(reader))
        with serve(app) as live:
            yield live


def get(api: LiveApi, **params: str) -> httpx.Response:
    return httpx.get(f"{api.url}/events", params=params, timeout=30)


def keys(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(row["turbine"], row["code"]) for row in response.json()]


def test_an_event_overlapping_the_range_is_listed(api: LiveApi) -> None:
    # [10:00, 10:15): the grid fault (10:00-10:30); WTG02's event ended at 10:00 (end exclusive)
    assert keys(get(api, start="2024-06-01T10:00:00Z", end="2024-06-01T10:15:00Z")) == [
        ("WTG01", "205")
    ]
    # [09:00, 10:00): nothing (the service ended at 09:00, the fault begins at 10:00)...
    # ...but WTG02's event, begun the day before, covers it
    assert keys(get(api, start="2024-06-01T09:00:00Z", end="2024-06-01T10:00:00Z")) == [
        ("WTG02", "101")
    ]
    # the whole day, by turbine, start and code
    assert keys(get(api, start="2024-06-01", end="2024-06-02")) == [
        ("WTG01", "101"),
        ("WTG01", "205"),
        ("WTG01", "300"),
        ("WTG02", "101"),
    ]


def test_an_ongoing_event_overlaps_every_range_after_its_start(api: LiveApi) -> None:
    assert keys(get(api, start="2025-01-01", end="2025-01-02")) == [("WTG01", "300")]
    assert keys(get(api, start="2024-06-01T11:00:00Z", end="2024-06-01T12:00:00Z")) == []


def test_turbines_filter_and_unknown_ones_are_refused(api: LiveApi) -> None:
    assert keys(get(api, start="2024-06-01", end="2024-06-02", turbines="WTG02")) == [
        ("WTG02", "101")
    ]
    refused = get(api, start="2024-06-01", end="2024-06-02", turbines="WTG09")
    assert refused.status_code == 422
    assert "unknown turbine 'WTG09'" in refused.json()["detail"]
    bad = get(api, start="2024-06-01", end="2024-06-02", turbines="WTG 1")
    assert bad.status_code == 422
    assert "not a list of turbine ids" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"start": "2024-06-02", "end": "2024-06-01"}, "must be after start"),
        ({"start": "2020-01-01", "end": "2024-06-01"}, "more than the maximum of"),
        ({"start": "yesterday", "end": "2024-06-01"}, "start"),
    ],
)
def test_a_bad_range_is_a_422_naming_it(api: LiveApi, params: dict[str, str], detail: str) -> None:
    response = get(api, **params)
    assert response.status_code == 422
    assert detail in response.json()["detail"]


def test_json_csv_and_arrow_say_the_same(api: LiveApi) -> None:
    day = {"start": "2024-06-01", "end": "2024-06-02"}
    rows = get(api, **day, format="json").json()
    assert rows[2] == {
        "turbine": "WTG01",
        "start": "2024-06-01T12:00:00Z",
        "end": None,
        "code": "300",
        "message": "Stopped by owner",
    }
    assert rows[3]["start"] == "2024-05-31T22:00:00Z" and rows[3]["message"] is None

    csv = get(api, **day, format="csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0] == "turbine,start,end,code,message"
    assert lines[3] == "WTG01,2024-06-01T12:00:00Z,,300,Stopped by owner"

    arrow = get(api, **day, format="arrow")
    table = pa.ipc.open_stream(io.BytesIO(arrow.content)).read_all()
    assert table.schema.field("start").type == pa.timestamp("us", tz="UTC")
    assert table.column("code").to_pylist() == [r["code"] for r in rows]
    assert table.column("end").to_pylist()[2] is None
    assert table.column("start").to_pylist()[0] == datetime(2024, 6, 1, 8, tzinfo=UTC)


def test_the_api_client_reads_events_as_a_frame(api: LiveApi) -> None:
    with ApiClient(api.url, retries=0) as client:
        frame = client.events(utc(2024, 6, 1, 9, 30), utc(2024, 6, 1, 12, 30))
        only = client.events(utc(2024, 6, 1), utc(2024, 6, 2), ["WTG02"])
    assert frame.schema["start"] == pl.Datetime("us", "UTC")
    assert frame.select("turbine", "code").rows() == [
        ("WTG01", "205"),
        ("WTG01", "300"),
        ("WTG02", "101"),
    ]
    assert frame["end"].to_list()[1] is None
    assert only["turbine"].to_list() == ["WTG02"]
