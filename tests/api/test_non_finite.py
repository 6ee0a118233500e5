"""NaN and infinities in the source: JSON has no such numbers and says null (as for a missing
value); CSV writes NaN, inf and -inf (a missing value is an empty field); Arrow carries them."""

import csv
import io
import json
import math
from collections.abc import Iterator

import httpx
import pyarrow as pa
import pytest
from sqlalchemy import Engine, text

from tests.conftest import serve
from windpipe.api import create_app
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings
from windpipe.source.store import ensure_schema

PARAMS = {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z", "variables": "power"}
#: 10:00 NaN, 10:01 +Infinity, 10:02 -Infinity, 10:03 NULL, 10:04 an ordinary value.
VALUES = ["'NaN'", "'Infinity'", "'-Infinity'", "NULL", "1234.5"]


@pytest.fixture
def client(settings: Settings, empty_database: Engine) -> Iterator[httpx.Client]:
    """The API over a source of this test's own holding the rows of ``VALUES``."""
    ensure_schema(empty_database)
    rows = ", ".join(
        f"('2024-05-01T10:0{i}:00Z', 'WTG01', {value}::double precision)"
        for i, value in enumerate(VALUES)
    )
    with empty_database.begin() as conn:
        conn.execute(text(f'INSERT INTO data ("timestamp", turbine, power) VALUES {rows}'))  # noqa: S608
    app = create_app(settings, source_conninfo=libpq_conninfo(empty_database.url))
    with serve(app) as live, httpx.Client(base_url=live.url, timeout=30) as c:
        yield c


def test_json_says_null_for_missing_and_non_finite_values_alike(client: httpx.Client) -> None:
    response = client.get("/data", params=PARAMS)
    assert response.status_code == 200
    assert "NaN" not in response.text and "Infinity" not in response.text  # strict JSON
    body = json.loads(response.text, parse_constant=pytest.fail)
    assert [row["power"] for row in body] == [None, None, None, None, 1234.5]


def test_csv_writes_nan_inf_and_minus_inf_and_an_empty_field_for_null(
    client: httpx.Client,
) -> None:
    response = client.get("/data", params=PARAMS | {"format": "csv"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["power"] for row in rows] == ["NaN", "inf", "-inf", "", "1234.5"]
    parsed = [float(row["power"]) for row in rows if row["power"]]  # Python reads them back
    assert math.isnan(parsed[0]) and parsed[1:] == [math.inf, -math.inf, 1234.5]


def test_arrow_carries_ieee_values_and_nulls_apart(client: httpx.Client) -> None:
    response = client.get("/data", params=PARAMS | {"format": "arrow"})
    assert response.status_code == 200
    power = pa.ipc.open_stream(response.content).read_all().column("power").to_pylist()
    assert math.isnan(power[0])
    assert power[1:] == [math.inf, -math.inf, None, 1234.5]
