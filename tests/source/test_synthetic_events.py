"""The synthetic farm's SCADA log: the generator's events agree with its status minute by minute,
the seed writes those of its span (re-seeding changes nothing), the live feed opens an ongoing
event and closes it, ``GET /events`` serves them and the windows they cover get the categories
of ``[event_codes]``' default."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import new_database, serve, utc
from windpipe.api import create_app
from windpipe.catalog import window_categories
from windpipe.postgres import libpq_conninfo
from windpipe.settings import SYNTHETIC_EVENT_CODES, Settings, load_settings
from windpipe.source.generator import (
    CURTAILED,
    EVENT_CODES,
    FORCED_STOP,
    GRID_CURTAILMENT,
    HIGH_WIND_HOLD_S,
    HIGH_WIND_STOP,
    SCHEDULED_MAINTENANCE,
    STOPPED,
    STORM,
    Event,
    TurbineSpec,
    clip_events,
    farm,
    farm_days,
    generate,
    join_events,
    split_by_turbine,
)
from windpipe.source.seed import append_minutes, seed_source
from windpipe.source.store import IMPORTED, ensure_schema, record_origin

SEED = 7
FARM = farm(2)
# WTG01 is serviced on 2024-02-05 (a forced stop follows the visit) and 2024-02-09; WTG02's forced
# stop of 2024-02-10 22:51 lasts until 05:23 the next day, across the span's end.
SPAN = (utc(2024, 2, 3, 5, 17), utc(2024, 2, 11, 3))
STATUS_OF_CODE = {
    FORCED_STOP: STOPPED,
    SCHEDULED_MAINTENANCE: STOPPED,
    GRID_CURTAILMENT: CURTAILED,
    HIGH_WIND_STOP: STORM,
}
Row = tuple[str, datetime, datetime | None, str, str]


def _days(start: datetime, end: datetime) -> list[date]:
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def generated_events(start: datetime, end: datetime) -> list[Event]:
    """The generator's events of ``[start, end)``, clipped to it (the test's oracle)."""
    days = farm_days(_days(start, end), turbines=FARM, seed=SEED)
    return clip_events(join_events(e for day in days for e in day.events), start, end)


def held_events(engine: Engine) -> list[Row]:
    with engine.connect() as conn:
        rows = conn.execute(
            text('SELECT turbine, start, "end", code, message FROM turbine_event ORDER BY 1, 2, 4')
        ).all()
    return [
        (t, s.astimezone(UTC), None if e is None else e.astimezone(UTC), c, m)
        for t, s, e, c, m in rows
    ]


def statuses(engine: Engine, turbine: str) -> tuple[np.ndarray, np.ndarray]:
    """A turbine's minutes (as datetime64[us], UTC) and their status codes."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT \"timestamp\" AT TIME ZONE 'UTC', status FROM data WHERE turbine = :t "
                'ORDER BY "timestamp"'
            ),
            {"t": turbine},
        ).all()
    return (
        np.array([r[0] for r in rows], dtype="datetime64[us]"),
        np.array([r[1] for r in rows], dtype=np.float64),
    )


def assert_events_match_status(engine: Engine, events: list[Row]) -> None:
    """Each minute the source holds is covered by an event iff its status is 2, 3 or 4, by one
    event at most per turbine, whose code says that status."""
    for spec in FARM:
        minutes, status = statuses(engine, spec.id)
        covering = np.zeros(minutes.size, dtype=np.int64)
        code_status = np.full(minutes.size, -1.0)
        for turbine, start, end, code, _ in events:
            if turbine != spec.id:
                continue
            assert end is not None, "the seed writes no ongoing event"
            lo, hi = np.searchsorted(
                minutes,
                np.array([start.replace(tzinfo=None), end.replace(tzinfo=None)], "datetime64[us]"),
            )
            covering[lo:hi] += 1
            code_status[lo:hi] = STATUS_OF_CODE[code]
        assert covering.max() <= 1  # a turbine's events never overlap
        wanted = np.isin(status, [STOPPED, CURTAILED, STORM])
        assert np.array_equal(covering == 1, wanted), spec.id
        assert np.array_equal(code_status[wanted], status[wanted])


@pytest.fixture(scope="module")
def farm_source(source_url: URL) -> Iterator[Engine]:
    """The two turbines' SPAN seeded in a database of its own."""
    with new_database(source_url, "windpipe_synthetic_events") as engine:
        ensure_schema(engine)
        seed_source(engine, *SPAN, turbines=FARM, seed=SEED, columns=["status"])
        yield engine


@pytest.fixture
def feed_source(source_url: URL) -> Iterator[Engine]:
    with new_database(source_url, "windpipe_synthetic_feed") as engine:
        ensure_schema(engine)
        yield engine


def test_the_generator_writes_an_event_for_each_run_of_status_2_3_and_4() -> None:
    days = list(farm_days(_days(*SPAN), turbines=FARM, seed=SEED))
    events = join_events(e for day in days for e in day.events)
    assert {e.code for e in events} == set(EVENT_CODES) == set(SYNTHETIC_EVENT_CODES)
    for spec in FARM:
        status = np.concatenate(
            [split_by_turbine(day.table)[spec.id]["status"].to_numpy() for day in days]
        )
        first = datetime.combine(_days(*SPAN)[0], datetime.min.time())
        covered = np.full(status.size, -1.0)
        for event in events:
            if event.turbine == spec.id:
                assert event.end is not None
                lo = int((event.start.replace(tzinfo=None) - first) / timedelta(minutes=1))
                hi = int((event.end.replace(tzinfo=None) - first) / timedelta(minutes=1))
                assert (covered[lo:hi] == -1).all()  # no overlap
                covered[lo:hi] = STATUS_OF_CODE[event.code]
        wanted = np.isin(status, [STOPPED, CURTAILED, STORM])
        assert np.array_equal(covered != -1, wanted)
        assert np.array_equal(covered[wanted], status[wanted])
    # maintenance: by day, on a weekday, a few hours; a curtailment names its setpoint
    visits = [e for e in events if e.code == SCHEDULED_MAINTENANCE]
    assert visits
    for visit in visits:
        assert visit.end is not None
        assert visit.start.weekday() < 5 and 7 <= visit.start.hour < 10
        assert timedelta(hours=2) <= visit.end - visit.start <= timedelta(hours=6, minutes=1)
    curtailed = [e for e in events if e.code == GRID_CURTAILMENT]
    assert all("setpoint" in e.message and "% of rated power" in e.message for e in curtailed)


def test_events_do_not_depend_on_the_span_generated() -> None:
    whole = generated_events(*SPAN)
    inner = (utc(2024, 2, 5, 10), utc(2024, 2, 10, 23))
    assert generated_events(*inner) == clip_events(whole, *inner)


def _eased(wind: np.ndarray, spec: TurbineSpec) -> np.ndarray:
    """At each 1-minute sample: whether the 10 minutes it closes had no sample at or above
    cut-out and a mean below the restart speed (False where fewer than 10 precede it)."""
    mm = np.rint(wind * 1000.0).astype(np.int64)  # whole mm/s: exact sums
    windows = sliding_window_view(mm, HIGH_WIND_HOLD_S // 60)
    eased = (windows.max(axis=1) < round(spec.cut_out * 1000)) & (
        windows.sum(axis=1) < round(spec.restart_speed * 1000) * windows.shape[1]
    )
    return np.concatenate([np.zeros(windows.shape[1] - 1, dtype=bool), eased])


def test_a_high_wind_stop_lasts_until_the_wind_has_eased_with_one_event_each() -> None:
    """No flicker around cut-out: a turbine stops at cut-out and restarts only once 10 minutes
    have had a mean below the restart speed (and nothing at cut-out): one 401 per stop, covering
    exactly its status-4 minutes, none shorter than the hold, producing nothing."""
    turbines = farm(4)
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(30)]  # a windy month of seed 3
    generated = list(farm_days(days, turbines=turbines, seed=3))
    events = join_events(e for day in generated for e in day.events)
    stops = [e for e in events if e.code == HIGH_WIND_STOP]
    assert len(stops) >= 20
    first = utc(2025, 1, 1)
    for spec in turbines:
        parts = [split_by_turbine(day.table)[spec.id] for day in generated]
        wind, power, energy, status = (
            np.concatenate([p[c].to_numpy() for p in parts])
            for c in ("wind_speed", "power", "energy", "status")
        )
        # An independent oracle: the controller sample by sample, from the first eased minute.
        eased = _eased(wind, spec)
        held, expected = False, np.zeros(status.size, dtype=bool)
        for i in range(status.size):
            held = wind[i] >= spec.cut_out or (held and not eased[i])
            expected[i] = held
        since = int(np.argmax(eased))
        assert np.array_equal(
            (status == STORM)[since:], (expected & (status != STOPPED))[since:]
        ), spec.id
        downtime_starts = {
            e.start for e in events if e.turbine == spec.id and e.code != HIGH_WIND_STOP
        }
        covered = np.zeros(status.size, dtype=bool)
        for stop in (s for s in stops if s.turbine == spec.id):
            assert stop.end is not None
            lo, hi = ((t - first) // timedelta(minutes=1) for t in (stop.start, stop.end))
            assert not covered[lo:hi].any()  # one event per stop, never overlapping
            covered[lo:hi] = True
            assert np.all(power[lo:hi] <= 0.0)  # no production: own consumption only
            assert np.ptp(energy[lo:hi]) == 0.0
            assert wind[lo] >= spec.cut_out  # it starts at cut-out ...
            if stop.end not in downtime_starts:  # ... and lasts the hold, unless a fault takes over
                assert stop.end - stop.start >= timedelta(seconds=HIGH_WIND_HOLD_S)
                assert eased[hi] and not eased[lo:hi].any()
        assert np.array_equal(covered, status == STORM), spec.id


def test_a_high_wind_stop_held_across_midnight_does_not_depend_on_the_span_generated() -> None:
    """A turbine that cuts out at 15 m/s is held over midnight now and then: generated in one go,
    a day at a time or from mid-stop, its samples and events are the same."""
    spec = TurbineSpec("WTG01", cut_out=15.0, restart_speed=12.0)
    start, end = utc(2025, 1, 1), utc(2025, 1, 11)
    whole = generate(start, end, turbines=[spec], seed=3)
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(10)]
    events = join_events(e for day in farm_days(days, turbines=[spec], seed=3) for e in day.events)
    across = [
        e for e in events
        if e.code == HIGH_WIND_STOP and e.end is not None and e.end.date() > e.start.date()
        and e.end.time() != datetime.min.time()
    ]  # fmt: skip
    assert across  # held over midnight
    memoryless = [c for c in whole.column_names if c != "energy"]
    for cut in (across[0].start + timedelta(minutes=5), utc(2025, 1, 5)):
        later = generate(cut, end, turbines=[spec], seed=3)
        assert later.select(memoryless).equals(
            whole.slice(whole.num_rows - later.num_rows).select(memoryless)
        )
    for day in days:
        (alone,) = farm_days([day], turbines=[spec], seed=3)
        midnight = datetime.combine(day, datetime.min.time(), UTC)
        assert alone.events == clip_events(events, midnight, midnight + timedelta(days=1))


def test_the_default_event_codes_are_the_generators_and_a_declared_table_replaces_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = load_settings(_env_file=None).event_codes
    assert {code: entry.category for code, entry in defaults.items()} == {
        FORCED_STOP: "forced_outage",
        SCHEDULED_MAINTENANCE: "scheduled_maintenance",
        GRID_CURTAILMENT: "partial_performance",
        HIGH_WIND_STOP: "out_of_environmental_specification",
    }
    config = tmp_path / "windpipe.toml"
    config.write_text('[event_codes]\n"7" = { category = "requested_shutdown" }\n')
    monkeypatch.setenv("WINDPIPE_CONFIG", str(config))
    assert list(load_settings(_env_file=None).event_codes) == ["7"]


def test_the_seed_writes_the_events_of_its_span_and_reseeding_changes_nothing(
    farm_source: Engine,
) -> None:
    events = held_events(farm_source)
    assert events == [tuple(e) for e in generated_events(*SPAN)]
    assert {code for *_, code, _ in events} == set(EVENT_CODES)
    assert_events_match_status(farm_source, events)
    # WTG02's stop across the span's end is clipped to it
    assert ("WTG02", utc(2024, 2, 10, 22, 51), SPAN[1], FORCED_STOP, EVENT_CODES[FORCED_STOP]) in (
        events
    )

    seed_source(farm_source, *SPAN, turbines=FARM, seed=SEED, columns=["status"])
    assert held_events(farm_source) == events


def test_a_seed_over_part_of_an_earlier_one_keeps_events_and_status_in_step(
    source_url: URL,
) -> None:
    with new_database(source_url, "windpipe_synthetic_overlap") as engine:
        ensure_schema(engine)
        seed_source(engine, *SPAN, turbines=FARM, seed=SEED, columns=["status"])
        # another seed over the middle (another seed value: other episodes), then one past the end
        middle = (utc(2024, 2, 5, 9), utc(2024, 2, 9, 12, 30))
        seed_source(engine, *middle, turbines=FARM, seed=SEED + 1, columns=["status"])
        assert_events_match_status(engine, held_events(engine))
        seed_source(
            engine, utc(2024, 2, 10), utc(2024, 2, 12), turbines=FARM, seed=SEED, columns=["status"]
        )
        events = held_events(engine)
        assert_events_match_status(engine, events)
        # the stop across the first span's end is one event again, whole
        assert ("WTG02", utc(2024, 2, 10, 22, 51), utc(2024, 2, 11, 5, 23)) in [
            e[:3] for e in events if e[3] == FORCED_STOP
        ]


@pytest.mark.parametrize(
    "seeded_until",
    [utc(2024, 2, 10, 22), utc(2024, 2, 11, 1)],
    ids=["the-feed-opens-it", "the-seed-clipped-it"],
)
def test_the_feed_opens_an_ongoing_event_and_closes_it_when_the_state_ends(
    feed_source: Engine, seeded_until: datetime
) -> None:
    def feed(until: datetime) -> dict[tuple[str, datetime, str], datetime | None]:
        append_minutes(feed_source, until=until, turbines=FARM, seed=SEED, columns=["status"])
        return {(e[0], e[1], e[3]): e[2] for e in held_events(feed_source)}

    # WTG02 stops from 22:51 to 05:23 the next day (05:22 is its last minute stopped)
    stop = ("WTG02", utc(2024, 2, 10, 22, 51), FORCED_STOP)
    seed_source(
        feed_source, utc(2024, 2, 10), seeded_until, turbines=FARM, seed=SEED, columns=["status"]
    )
    held = {(e[0], e[1], e[3]): e[2] for e in held_events(feed_source)}
    if seeded_until < stop[1]:
        assert stop not in held
        assert stop not in feed(utc(2024, 2, 10, 22, 50))
        assert feed(utc(2024, 2, 10, 22, 51))[stop] is None  # opened at its first minute
    else:
        assert held[stop] == seeded_until  # the seed clipped it; the feed carries it on
    assert feed(utc(2024, 2, 11, 2))[stop] is None
    assert feed(utc(2024, 2, 11, 5, 22))[stop] is None
    assert feed(utc(2024, 2, 11, 5, 23))[stop] == utc(2024, 2, 11, 5, 23)  # closed

    # in all, in rounds of any size, the events the seed would have written for those minutes
    until = utc(2024, 2, 11, 5, 23)
    for minutes in (1, 7, 60, 240):
        until += timedelta(minutes=minutes)
        feed(until)
    events = held_events(feed_source)
    end = until + timedelta(minutes=1)
    expected = [tuple(e) for e in generated_events(utc(2024, 2, 10), end)]
    # what the feed still sees going at its newest minute is ongoing
    assert events == [e if e[2] != end else (*e[:2], None, *e[3:]) for e in expected]
    assert_events_match_status(feed_source, [e if e[2] else (*e[:2], end, *e[3:]) for e in events])


def test_the_feed_carries_on_a_high_wind_stop_the_seed_clipped(feed_source: Engine) -> None:
    """The feed's first minute (wind below cut-out, held) stays in the stop the seed cut at its
    edge: one 401, closed at the first minute the turbine runs again."""
    # WTG02 cuts out at 11:12 and runs again at 11:37; at 11:20 the wind is just under 25 m/s.
    stop = ("WTG02", utc(2024, 2, 8, 11, 12), HIGH_WIND_STOP)
    seeded_until = utc(2024, 2, 8, 11, 20)
    seed_source(
        feed_source, utc(2024, 2, 8), seeded_until, turbines=FARM, seed=SEED, columns=["status"]
    )

    def feed(until: datetime) -> dict[tuple[str, datetime, str], datetime | None]:
        append_minutes(feed_source, until=until, turbines=FARM, seed=SEED, columns=["status"])
        return {(e[0], e[1], e[3]): e[2] for e in held_events(feed_source)}

    assert {(e[0], e[1], e[3]): e[2] for e in held_events(feed_source)}[stop] == seeded_until
    assert feed(seeded_until)[stop] is None  # carried on, ongoing
    assert feed(utc(2024, 2, 8, 11, 36))[stop] is None
    assert feed(utc(2024, 2, 8, 11, 37))[stop] == utc(2024, 2, 8, 11, 37)
    end = utc(2024, 2, 8, 11, 38)
    events = held_events(feed_source)
    assert [e for e in events if e[3] == HIGH_WIND_STOP] == [
        tuple(e) for e in generated_events(utc(2024, 2, 8), end) if e.code == HIGH_WIND_STOP
    ]
    assert_events_match_status(feed_source, [e if e[2] else (*e[:2], end, *e[3:]) for e in events])


def test_the_feed_writes_no_event_for_a_turbine_holding_imported_data(
    feed_source: Engine,
) -> None:
    raw = feed_source.raw_connection()
    try:
        with raw.driver_connection.transaction():
            record_origin(raw.driver_connection, ["WTG02"], IMPORTED)
    finally:
        raw.close()
    append_minutes(feed_source, until=utc(2024, 2, 11, 2), turbines=FARM, seed=SEED)
    append_minutes(feed_source, until=utc(2024, 2, 11, 6), turbines=FARM, seed=SEED)
    assert {e[0] for e in held_events(feed_source)} <= {"WTG01"}


def test_the_api_serves_the_seeded_events(settings: Settings, farm_source: Engine) -> None:
    app = create_app(settings, source_conninfo=libpq_conninfo(farm_source.url))
    with serve(app) as api:
        response = httpx.get(
            f"{api.url}/events",
            params={"start": "2024-02-05", "end": "2024-02-06", "turbines": "WTG01"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    served = [
        (r["turbine"], datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"]),
         r["code"], r["message"])
        for r in response.json()
    ]  # fmt: skip
    # an event overlapping the day is served whole
    day = (utc(2024, 2, 5), utc(2024, 2, 6))
    expected = [
        tuple(e) for e in generated_events(*SPAN)
        if e.turbine == "WTG01" and e.start < day[1] and e.end is not None and e.end > day[0]
    ]  # fmt: skip
    assert served == expected
    assert SCHEDULED_MAINTENANCE in {e[3] for e in served}


def test_downtime_windows_are_forced_outage_or_scheduled_maintenance(farm_source: Engine) -> None:
    with farm_source.connect() as conn:
        events = pl.read_database('SELECT turbine, start, "end", code FROM turbine_event', conn)
        held = pl.read_database(
            "SELECT DISTINCT turbine, date_bin('10 minutes', \"timestamp\", "
            "'2000-01-01'::timestamptz) AS \"timestamp\" FROM data",
            conn,
        )
    codes = {
        code: entry.category for code, entry in load_settings(_env_file=None).event_codes.items()
    }
    categories = window_categories(events, held, held, codes)
    by_window = {
        (row["turbine"], row["timestamp"]): row["category"]
        for row in categories.iter_rows(named=True)
    }
    generated = generated_events(*SPAN)
    seen = set()
    for event in generated:
        assert event.end is not None
        # every window wholly inside the event
        window = event.start.replace(tzinfo=None)
        window += timedelta(minutes=-window.minute % 10)
        while window + timedelta(minutes=10) <= event.end.replace(tzinfo=None):
            category = by_window[(event.turbine, window)]
            assert category == SYNTHETIC_EVENT_CODES[event.code].category
            seen.add(category)
            window += timedelta(minutes=10)
    assert {"forced_outage", "scheduled_maintenance"} <= seen
    # a window no event touches holds data: full performance
    touched = {
        (e.turbine, e.start.replace(tzinfo=None) + timedelta(minutes=m))
        for e in generated
        for m in range(int((e.end - e.start) / timedelta(minutes=1)) if e.end else 0)
    }
    free = [
        k for k in by_window
        if not any((k[0], k[1] + timedelta(minutes=m)) in touched for m in range(10))
    ]  # fmt: skip
    assert free and all(by_window[k] == "full_performance" for k in free)
