"""``GET /events/changes`` on a real server, reading the source as the API's read-only role: the
log the triggers of migration s0006 keep of every write to ``turbine_event`` (import, re-import,
an ongoing event closed, a delete, a truncate), validation, and ``ApiClient.event_changes``."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import LiveApi, new_database, serve, utc
from windpipe.api import create_app
from windpipe.catalog import EventChange
from windpipe.etl.extract import ApiClient
from windpipe.postgres import ensure_reader_role, libpq_conninfo
from windpipe.settings import Settings
from windpipe.source.events import import_events
from windpipe.source.store import ensure_schema

READER = "windpipe_event_changes_reader"
EVENTS = """turbine,start,end,code,message
WTG01,2024-06-01T08:00:00Z,2024-06-01T09:00:00Z,101,Service
WTG01,2024-06-03T10:00:00Z,,300,Stopped by owner
WTG02,2024-05-31T22:00:00Z,2024-06-01T10:00:00Z,101,
"""


@pytest.fixture(scope="module")
def live(
    settings: Settings, source_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveApi, Engine, Path]]:
    with new_database(source_url, "windpipe_event_changes_api") as engine:
        ensure_reader_role(engine, READER, None)
        ensure_schema(engine)
        path: Path = tmp_path_factory.mktemp("events") / "events.csv"
        path.write_text(EVENTS)
        reader = engine.url.set(username=READER, password=None)
        app = create_app(settings, source_conninfo=libpq_conninfo(reader))
        with serve(app) as api:
            yield api, engine, path


def changes(api: LiveApi, **params: str) -> dict:
    response = httpx.get(f"{api.url}/events/changes", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def spans(body: dict) -> list[tuple[str | None, str | None, str | None]]:
    return [(c["turbine"], c["first"], c["last"]) for c in body["changes"]]


def test_every_write_to_the_events_is_logged_per_turbine(
    live: tuple[LiveApi, Engine, Path],
) -> None:
    api, engine, path = live
    assert changes(api) == {"head": 0, "changes": []}

    import_events(path, engine=engine)
    head = changes(api)["head"]
    assert changes(api)["changes"] == []  # without `after`: where a new reader starts
    first = changes(api, after="0")
    assert first["head"] == head
    # One statement (the file's upsert): one change per turbine, the span of its events; WTG01's
    # ongoing stop makes its span reach to now.
    assert spans(first) == [
        ("WTG01", "2024-06-01T08:00:00Z", None),
        ("WTG02", "2024-05-31T22:00:00Z", "2024-06-01T10:00:00Z"),
    ]

    import_events(path, engine=engine)  # a re-import that changes nothing logs nothing
    assert changes(api, after=str(head)) == {"head": head, "changes": []}

    # The ongoing stop closed: the span it covered before and after (ongoing: to now).
    closed = path.with_name("closed.csv")
    closed.write_text(
        "turbine,start,end,code,message\nWTG01,2024-06-03T10:00:00Z,2024-06-03T12:00:00Z,300,x\n"
    )
    import_events(closed, engine=engine)
    assert spans(changes(api, after=str(head))) == [("WTG01", "2024-06-03T10:00:00Z", None)]

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM turbine_event WHERE turbine = 'WTG02'"))
        conn.execute(text("TRUNCATE turbine_event"))
    later = changes(api, after=str(head + 1))
    assert spans(later) == [
        ("WTG02", "2024-05-31T22:00:00Z", "2024-06-01T10:00:00Z"),
        (None, None, None),  # emptied: every turbine, every day
    ]
    assert [c["id"] for c in later["changes"]] == sorted(c["id"] for c in later["changes"])
    assert later["head"] == later["changes"][-1]["id"]
    assert len(changes(api, after="0", limit="2")["changes"]) == 2


def test_the_api_client_reads_the_changes(live: tuple[LiveApi, Engine, Path]) -> None:
    api, engine, path = live
    with ApiClient(api.url, retries=0) as client:
        head, none = client.event_changes(None)
        import_events(path, engine=engine)
        after, new = client.event_changes(head)
    assert none == [] and after > head
    assert new == [
        EventChange(new[0].id, "WTG01", utc(2024, 6, 1, 8), None),
        EventChange(new[1].id, "WTG02", utc(2024, 5, 31, 22), utc(2024, 6, 1, 10)),
    ]
    # The days a change touches, within the partitions: an ongoing event's reach to today.
    assert new[1].days(date(2024, 1, 1), date(2024, 12, 31)) == [
        date(2024, 5, 31),
        date(2024, 6, 1),
    ]
    assert new[0].days(date(2024, 6, 2), date(2024, 6, 3)) == [date(2024, 6, 2), date(2024, 6, 3)]
    at_midnight = EventChange(9, "WTG01", utc(2024, 6, 1, 22), datetime(2024, 6, 2, tzinfo=UTC))
    assert at_midnight.days(date(2024, 1, 1), date(2024, 12, 31)) == [date(2024, 6, 1)]
    assert EventChange(9, None, None, None).days(date(2024, 6, 1), date(2024, 6, 2)) == [
        date(2024, 6, 1),
        date(2024, 6, 2),
    ]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"after": "-1"}, "after"),
        ({"after": "ten"}, "after"),
        ({"after": "0", "limit": "0"}, "limit"),
        ({"after": "0", "limit": "10001"}, "limit"),
    ],
)
def test_bad_parameters_are_a_422_naming_them(
    live: tuple[LiveApi, Engine, Path], params: dict[str, str], detail: str
) -> None:
    api, _, _ = live
    response = httpx.get(f"{api.url}/events/changes", params=params, timeout=30)
    assert response.status_code == 422
    assert detail in str(response.json()["detail"])
