import httpx

from tests.conftest import LiveApi


def test_live_api_serves_seeded_day(live_api: LiveApi) -> None:
    response = httpx.get(
        f"{live_api.url}/data", params={"start": "2024-03-01", "end": "2024-03-02"}
    )
    assert response.status_code == 200
    assert len(response.json()) == 1440
