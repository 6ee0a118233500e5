import csv
import io
from datetime import UTC, datetime

import httpx
import pyarrow as pa
import pytest
from sqlalchemy import Engine, text

from tests.conftest import LiveApi, serve
from windpipe.api import create_app
from windpipe.settings import Settings

DAY = {"start": "2024-03-02", "end": "2024-03-03"}


@pytest.fixture(scope="module")
def client(live_api: LiveApi) -> httpx.Client:
    with httpx.Client(base_url=live_api.url, timeout=30) as c:
        yield c


def _source_rows(engine: Engine, start: str, end: str, columns: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    f'SELECT "timestamp", {columns} FROM data '  # noqa: S608 - test constants
                    'WHERE "timestamp" >= :s AND "timestamp" < :e ORDER BY "timestamp"'
                ),
                {"s": start, "e": end},
            )
        ]


def test_json_rows_are_the_source_rows_in_order(
    client: httpx.Client, seeded_source: Engine
) -> None:
    response = client.get("/data", params=DAY | {"variables": "wind_speed,power"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body[0] == {
        "turbine": "WTG01",
        "timestamp": "2024-03-02T00:00:00Z",
        "wind_speed": body[0]["wind_speed"],
        "power": body[0]["power"],
    }
    expected = _source_rows(
        seeded_source, "2024-03-02T00:00Z", "2024-03-03T00:00Z", "wind_speed, power"
    )
    got = [(datetime.fromisoformat(r["timestamp"]), r["wind_speed"], r["power"]) for r in body]
    assert got == expected and len(got) == 1440


def test_the_three_formats_carry_identical_data(client: httpx.Client) -> None:
    params = {"start": "2024-03-10T06:00:00", "end": "2024-03-10T18:00:00+00:00"}  # a gappy day
    as_json = client.get("/data", params=params).json()
    as_csv = client.get("/data", params=params | {"format": "csv"})
    as_arrow = client.get(
        "/data", params=params, headers={"Accept": "application/vnd.apache.arrow.stream"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"

    rows_csv = list(csv.DictReader(io.StringIO(as_csv.text)))
    table = pa.ipc.open_stream(as_arrow.content).read_all()
    assert table.schema.names == [
        "turbine",
        "timestamp",
        "wind_speed",
        "power",
        "ambient_temperature",
    ]
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert 600 < len(as_json) < 720  # gaps: fewer than 720 minutes
    assert len(as_json) == len(rows_csv) == table.num_rows
    arrow_rows = table.to_pylist()
    for j, c, a in zip(as_json, rows_csv, arrow_rows, strict=True):
        assert (
            datetime.fromisoformat(j["timestamp"])
            == datetime.fromisoformat(c["timestamp"])
            == a["timestamp"]
        )
        for name in ("wind_speed", "power", "ambient_temperature"):
            assert j[name] == float(c[name]) == a[name]
        assert j["turbine"] == c["turbine"] == a["turbine"] == "WTG01"


def test_variables_repeated_and_comma_separated(client: httpx.Client) -> None:
    params = [
        ("start", "2024-03-01"),
        ("end", "2024-03-01T00:05"),
        ("variables", "power"),
        ("variables", "ambient_temperature,power"),
    ]
    body = client.get("/data", params=params).json()
    assert len(body) == 5
    assert list(body[0]) == ["turbine", "timestamp", "power", "ambient_temperature"]


def test_accept_csv_and_offsets(client: httpx.Client) -> None:
    response = client.get(
        "/data",
        params={
            "start": "2024-03-01T02:00:00+02:00",
            "end": "2024-03-01T00:03:00Z",
            "variables": "power",
        },
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.text.splitlines()[0] == "turbine,timestamp,power"
    assert [line.split(",")[1] for line in response.text.splitlines()[1:]] == [
        "2024-03-01T00:00:00Z",
        "2024-03-01T00:01:00Z",
        "2024-03-01T00:02:00Z",
    ]


def test_a_range_without_data_is_an_empty_answer(client: httpx.Client) -> None:
    params = {"start": "1999-01-01", "end": "1999-01-02"}
    assert client.get("/data", params=params).json() == []
    assert client.get("/data", params=params | {"format": "csv"}).text == (
        "turbine,timestamp,wind_speed,power,ambient_temperature\n"
    )
    assert (
        pa.ipc.open_stream(client.get("/data", params=params | {"format": "arrow"}).content)
        .read_all()
        .num_rows
        == 0
    )


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"start": "2024-03-02", "end": "2024-03-02"}, "must be after start"),
        ({"start": "2024-03-03", "end": "2024-03-02"}, "end (2024-03-02) must be after start"),
        (
            {"start": "2024-03-03T06:00", "end": "2024-03-02"},
            "end (2024-03-02T00:00:00+00:00) must be after start (2024-03-03T06:00:00+00:00)",
        ),
        (
            {"start": "2024-13-01", "end": "2024-03-02"},
            "start='2024-13-01' is not a valid date or time (month must be in 1..12)",
        ),
        ({"start": "1732060800", "end": "2024-03-02"}, "start='1732060800' is not an ISO 8601"),
        ({"start": "20240301", "end": "2024-03-02"}, "start='20240301' is not an ISO 8601"),
        ({"start": "2024-W09-5", "end": "2024-03-02"}, "start='2024-W09-5' is not an ISO 8601"),
        (
            {"start": "0001-01-01T00:00+01:00", "end": "2024-03-02"},
            "falls outside 0001-01-01..9999-12-31 once converted to UTC",
        ),
        (
            {"start": "2024-03-01", "end": "9999-12-31T23:00-01:00"},
            "end='9999-12-31T23:00-01:00' falls outside 0001-01-01..9999-12-31",
        ),
        (
            {"start": "2023-03-01", "end": "2024-03-01T00:00:01"},
            "spans 366 days and 1 second, more than the maximum of 366 days",
        ),
        ({"start": "yesterday", "end": "2024-03-02"}, "start='yesterday' is not an ISO 8601"),
        (
            {"start": "2024-03-01", "end": "2024-03-02", "variables": "rpm"},
            "unknown variable 'rpm'; accepted: wind_speed, power, ambient_temperature",
        ),
        ({"start": "2024-03-01", "end": "2024-03-02", "variables": ","}, "variables is empty"),
        (
            {"start": "2024-03-01", "end": "2024-03-02", "format": "xml"},
            "format: Input should be 'json', 'csv' or 'arrow'",
        ),
        (
            {"start": "2020-01-01", "end": "2024-03-02"},
            "more than the maximum of 366 days (WINDPIPE_API_MAX_RANGE_DAYS)",
        ),
        ({"end": "2024-03-02"}, "start is required"),
        ({"start": "2024-03-01; DROP TABLE data", "end": "2024-03-02"}, "is not an ISO 8601"),
        (
            {"start": "2024-03-01", "end": "2024-03-02", "variables": "power; DROP TABLE data"},
            "unknown variable",
        ),
    ],
)
def test_bad_input_is_a_422_naming_the_value(
    client: httpx.Client, params: dict, detail: str
) -> None:
    response = client.get("/data", params=params)
    assert response.status_code == 422
    assert detail in response.json()["detail"]


def test_variables_coverage_health_and_docs(client: httpx.Client, seeded_source: Engine) -> None:
    variables = client.get("/variables").json()
    assert [v["name"] for v in variables] == ["wind_speed", "power", "ambient_temperature"]
    assert {v["unit"] for v in variables} == {"m/s", "kW", "degC"}

    coverage = client.get("/coverage").json()
    with seeded_source.connect() as conn:
        first, last, rows = conn.execute(
            text('SELECT min("timestamp"), max("timestamp"), count(*) FROM data')
        ).one()
    assert datetime.fromisoformat(coverage["first"]) == first
    assert datetime.fromisoformat(coverage["last"]) == last
    assert coverage["rows"] == rows

    assert client.get("/health").json() == {"status": "ok", "database": "ok", "contract": "ok"}
    root = client.get("/", follow_redirects=False)  # a landing page: the dashboard and the docs
    assert root.status_code == 200 and 'href="ui"' in root.text and 'href="docs"' in root.text
    spec = client.get("/openapi.json").json()
    assert "Samples with" in spec["paths"]["/data"]["get"]["description"]


def test_health_answers_head_for_probes(client: httpx.Client) -> None:
    response = client.head("/health")
    assert response.status_code == 200
    assert response.content == b""


def test_a_dead_database_is_a_503_not_a_500(settings: Settings, tmp_path) -> None:
    dead = f"postgresql://postgres@/windpipe_source?host={tmp_path}"  # no server listens there
    app = create_app(settings, source_conninfo=dead)
    with serve(app) as api, httpx.Client(base_url=api.url) as client:
        health = client.get("/health")
        data = client.get("/data", params=DAY)
        coverage = client.get("/coverage")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert data.status_code == 503 and "source database does not answer" in data.json()["detail"]
    assert coverage.status_code == 503


def test_max_range_is_configurable(settings: Settings, live_api: LiveApi) -> None:
    narrow = settings.model_copy(update={"api_max_range_days": 1})
    app = create_app(narrow, source_conninfo="unused")
    with serve(app) as api, httpx.Client(base_url=api.url) as client:
        response = client.get("/data", params={"start": "2024-03-01", "end": "2024-03-03"})
    assert response.status_code == 422
    assert "more than the maximum of 1 days" in response.json()["detail"]


def test_the_last_days_of_the_calendar_are_an_answer_not_a_500(client: httpx.Client) -> None:
    response = client.get("/data", params={"start": "9999-12-31", "end": "9999-12-31T23:59"})
    assert response.status_code == 200
    assert response.json() == []


def test_an_unencoded_plus_in_the_offset_still_means_plus(client: httpx.Client) -> None:
    # curl 'start=2024-03-01T05:30:00+05:30' sends the + raw; it arrives as a space.
    url = "/data?start=2024-03-01T05:30:00+05:30&end=2024-03-01T00:01:00Z"
    body = client.get(url).json()
    assert [row["timestamp"] for row in body] == ["2024-03-01T00:00:00Z"]


def test_timestamps_are_utc_whatever_the_offset_asked(client: httpx.Client) -> None:
    body = client.get(
        "/data", params={"start": "2024-03-01T05:30:00+05:30", "end": "2024-03-01T00:01:00Z"}
    ).json()
    assert body[0]["timestamp"] == "2024-03-01T00:00:00Z"
    assert datetime.fromisoformat(body[0]["timestamp"]).tzinfo == UTC


@pytest.mark.parametrize("path", ["/data", "/aggregates", "/fingerprints"])
@pytest.mark.parametrize("value", ["", " ", "WTG01,,WTG02", "WTG01,"])
def test_a_turbines_value_holding_no_id_is_refused_not_read_as_every_turbine(
    client: httpx.Client, path: str, value: str
) -> None:
    day = {"start": "2024-03-01", "end": "2024-03-02"}
    response = client.get(path, params={**day, "turbines": value})
    assert response.status_code == 422, response.text
    assert "is not a list of turbine ids" in response.json()["detail"]


def test_a_parameter_a_route_does_not_take_is_refused_naming_those_it_takes(
    client: httpx.Client,
) -> None:
    # `turbine=` for `turbines=` would otherwise be ignored and answer every turbine
    day = {"start": "2024-03-02", "end": "2024-03-03"}
    typo = client.get("/data", params={**day, "turbine": "WTG01"})
    assert typo.status_code == 422
    detail = typo.json()["detail"]
    assert detail.startswith("unknown parameter turbine; /data takes: ")
    assert "turbines" in detail and "start" in detail and "format" in detail
    two = client.get("/events", params={**day, "turbine": "WTG01", "kind": "x"})
    assert two.status_code == 422 and two.json()["detail"].startswith(
        "unknown parameters kind, turbine; /events takes: "
    )
    assert client.get("/data", params={**day, "turbines": "WTG01"}).status_code == 200
    assert client.get("/health").status_code == 200
