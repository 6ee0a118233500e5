"""``/data`` pages a farm's range by rows: any page size gives the same answer (the same bytes,
but for Arrow, whose stream holds a record batch per page: the same table)."""

import httpx
import pyarrow as pa
import pytest

from tests.conftest import FARM_DAYS, LiveApi
from windpipe.api.formats import DataFormat
from windpipe.api.routes import samples


@pytest.mark.parametrize("fmt", ["json", "csv", "arrow"])
def test_small_pages_across_turbines_give_the_same_answer(
    farm_api: LiveApi, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    params = {
        "start": f"{FARM_DAYS[0]}T18:00:00Z",
        "end": f"{FARM_DAYS[1]}T06:00:00Z",
        "variables": "wind_speed,power",
        "turbines": "WTG01,WTG02,WTG03",
        "format": fmt,
    }
    with httpx.Client(base_url=farm_api.url, timeout=30) as client:
        whole = client.get("/data", params=params)
        pages = []
        for size in (499, 720):  # pages ending inside a turbine's rows and on its last row
            monkeypatch.setitem(samples.PAGE_ROWS, DataFormat(fmt), size)
            pages.append(client.get("/data", params=params))
            everyone = {k: v for k, v in params.items() if k != "turbines"}
            pages.append(client.get("/data", params=everyone))
    assert whole.status_code == 200
    assert [p.status_code for p in pages] == [200] * 4
    if fmt == "arrow":
        table = pa.ipc.open_stream(whole.content).read_all()
        assert all(pa.ipc.open_stream(p.content).read_all().equals(table) for p in pages)
    else:
        assert all(p.content == whole.content for p in pages)
