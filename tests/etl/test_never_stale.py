"""Never silently stale: source fingerprints, the lost-update race, closed windows at the live
edge and non-finite samples, for real (PostgreSQL, a live API, the pipeline)."""

import math
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import sqlalchemy.exc
from sqlalchemy import Engine, text

from tests.conftest import FARM_DAYS, FARM_TURBINES, MutableFarm
from windpipe.catalog import EMPTY_FINGERPRINT
from windpipe.etl import pipeline
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source

VARIABLES = ["wind_speed", "power"]
AGGREGATIONS = ["mean", "min", "max", "std"]
D0, D1 = FARM_DAYS


def _hour(day: date, hour: int) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return start, start + timedelta(hours=1)


def _execute(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def _recomputed(source: Engine) -> dict[tuple[str, date], str]:
    """The fingerprints computed from the rows themselves (what the triggers keep)."""
    with source.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT turbine, ("timestamp" AT TIME ZONE 'UTC')::date, count(*),
                       sum(hash_record_extended(r, 0)::numeric)
                FROM data r GROUP BY 1, 2
                """
            )
        )
        return {(t, d): f"{n}:{checksum}" for t, d, n, checksum in rows}


def _sql_power_mean(source: Engine, turbine: str, day: date) -> dict[datetime, float]:
    """PostgreSQL's 10-minute mean of the finite power samples, by window start (naive UTC)."""
    with source.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT date_bin('10 minutes', "timestamp", timestamptz '2000-01-01'),
                       avg(power) FILTER (WHERE power NOT IN ('NaN', 'Infinity', '-Infinity'))
                FROM data WHERE turbine = :t AND "timestamp" >= :lo AND "timestamp" < :hi
                GROUP BY 1
                """
            ),
            {"t": turbine, "lo": day, "hi": day + timedelta(days=1)},
        )
        return {w.astimezone(UTC).replace(tzinfo=None): v for w, v in rows if v is not None}


def _target_signal(target: Engine, turbine: str, day: date, signal: str) -> dict[datetime, float]:
    with target.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT d."timestamp", d.value FROM data d JOIN signal s ON s.id = d.signal_id
                WHERE s.turbine = :t AND s.name = :n AND d."timestamp" >= :lo
                  AND d."timestamp" < :hi
                """
            ),
            {"t": turbine, "n": signal, "lo": day, "hi": day + timedelta(days=1)},
        )
        return {(w.astimezone(UTC).replace(tzinfo=None) if w.tzinfo else w): v for w, v in rows}


def _day_load(target: Engine) -> dict[tuple[str, date], tuple[str, int, int]]:
    with target.connect() as conn:
        rows = conn.execute(
            text("SELECT turbine, day, fingerprint, samples, non_finite FROM day_load")
        )
        return {(t, d): (f, int(n), int(bad)) for t, d, f, n, bad in rows}


def _run(farm_: MutableFarm, day: date, client: ApiClient | None = None, **kwargs: object) -> None:
    with ApiClient(farm_.api.url, retries=0) if client is None else client as c:
        run_range(
            day,
            day,
            client=c,
            engine=farm_.target,
            variables=VARIABLES,
            aggregations=AGGREGATIONS,
            turbines=FARM_TURBINES,
            **kwargs,  # type: ignore[arg-type]
        )


def test_fingerprints_move_with_every_change_and_only_then(mutable_farm: MutableFarm) -> None:
    source, url = mutable_farm.source, mutable_farm.api.url
    with ApiClient(url, retries=0) as client:
        before = client.fingerprints(D0, D1)
        assert set(before) == {(t, d) for t in FARM_TURBINES for d in FARM_DAYS}
        assert before == _recomputed(source)
        # Seeding the same days again rewrites every row with the values it had: nothing moves.
        begin = datetime(D0.year, D0.month, D0.day, tzinfo=UTC)
        seed_source(source, begin, begin + timedelta(days=2), turbines=farm(3), seed=5)
        assert client.fingerprints(D0, D1) == before
        # A re-calibrated hour of one turbine moves that turbine's day, nothing else.
        lo, hi = _hour(D0, 10)
        _execute(
            source,
            "UPDATE data SET power = power * 1.01 WHERE turbine = 'WTG02' AND \"timestamp\" >= :lo "
            'AND "timestamp" < :hi',
            lo=lo,
            hi=hi,
        )
        after = client.fingerprints(D0, D1)
        assert {k for k in before if before[k] != after[k]} == {("WTG02", D0)}
        # Ten minutes lost, then back-filled with the same values: moved, then back.
        lo, _ = _hour(D1, 3)
        with source.begin() as conn:
            lost = (
                conn.execute(
                    text(
                        "DELETE FROM data WHERE turbine = 'WTG03' AND \"timestamp\" >= :lo "
                        'AND "timestamp" < :hi RETURNING *'
                    ),
                    {"lo": lo, "hi": lo + timedelta(minutes=10)},
                )
                .mappings()
                .all()
            )
        gone = client.fingerprints(D0, D1)[("WTG03", D1)]
        assert gone != after[("WTG03", D1)]
        assert int(gone.split(":")[0]) == int(after[("WTG03", D1)].split(":")[0]) - len(lost)
        with source.begin() as conn:
            conn.execute(
                text(
                    'INSERT INTO data ("timestamp", wind_speed, power, ambient_temperature, '
                    "turbine) VALUES (:timestamp, :wind_speed, :power, :ambient_temperature, "
                    ":turbine)"
                ),
                [dict(row) for row in lost],
            )
        assert client.fingerprints(D0, D1) == after == _recomputed(source)
        # One turbine, one day: only those; a day without samples is not listed.
        assert client.fingerprints(D1, D1 + timedelta(days=1), ["WTG01"]) == {
            ("WTG01", D1): after[("WTG01", D1)]
        }
    # Bad input: a clear 422 and nothing else.
    for params, words in (
        ({"start": "2024-06-01T10:00", "end": "2024-06-02"}, "use YYYY-MM-DD"),
        ({"start": "2024-06-02", "end": "2024-06-01"}, "must be after start"),
        ({"start": "2024-06-01", "end": "2024-06-02", "turbines": "WTG09"}, "known: WTG01"),
    ):
        answer = httpx.get(f"{url}/fingerprints", params=params)
        assert answer.status_code == 422 and words in answer.json()["detail"], answer.text


def test_each_load_records_the_fingerprint_it_read(mutable_farm: MutableFarm) -> None:
    _run(mutable_farm, D0)
    with ApiClient(mutable_farm.api.url, retries=0) as client:
        source = client.fingerprints(D0, D0)
    loads = _day_load(mutable_farm.target)
    assert {k: v[0] for k, v in loads.items()} == source
    assert all(n > 1400 and bad == 0 for _, n, bad in loads.values())


def test_the_older_fetch_finishing_last_no_longer_wins(
    mutable_farm: MutableFarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run A fetches the day, then waits; the source changes; run B fetches and loads; then A
    loads. Before, A's stale aggregates won (both exit 0); now A sees the source moved under its
    lock, fetches again, and the target holds the source's newest state."""
    source, target, url = mutable_farm.source, mutable_farm.target, mutable_farm.api.url
    lo, hi = _hour(D0, 12)
    attempts_by_default = pipeline.MOVED_ATTEMPTS

    def race(attempts: int) -> dict[datetime, float]:
        monkeypatch.setattr(pipeline, "MOVED_ATTEMPTS", attempts)
        fetched, go_on = threading.Event(), threading.Event()

        def pause_after_data(response: httpx.Response) -> None:
            if response.request.url.path == "/data" and not fetched.is_set():
                fetched.set()  # A's samples are read (the first page precedes the headers)
                go_on.wait(30)

        slow = ApiClient(url, retries=0, event_hooks={"response": [pause_after_data]})
        failure: list[BaseException] = []

        def run_a() -> None:
            try:
                _run(mutable_farm, D0, client=slow)
            except BaseException as exc:
                failure.append(exc)

        a = threading.Thread(target=run_a)
        a.start()
        assert fetched.wait(30)
        _execute(
            source,
            "UPDATE data SET power = power + 500 WHERE turbine = 'WTG01' "
            'AND "timestamp" >= :lo AND "timestamp" < :hi',
            lo=lo,
            hi=hi,
        )
        _run(mutable_farm, D0)  # B: the newest state
        go_on.set()
        a.join(60)
        assert not failure, failure
        return _target_signal(target, "WTG01", D0, "power_mean")

    # Today's race, reproduced: without the check under the lock, the older fetch wins.
    stale = race(attempts=1)
    truth = _sql_power_mean(source, "WTG01", D0)
    noon = lo.replace(tzinfo=None)
    assert stale[noon] == pytest.approx(truth[noon] - 500)
    # Fixed: A's load finds the source moved, fetches again, and carries the newest state.
    fixed = race(attempts=attempts_by_default)
    truth = _sql_power_mean(source, "WTG01", D0)
    assert fixed == pytest.approx(truth, rel=1e-12)
    with ApiClient(url, retries=0) as client:
        assert _day_load(target)[("WTG01", D0)][0] == client.fingerprints(D0, D0)[("WTG01", D0)]


def test_only_closed_windows_are_written_at_the_live_edge(mutable_farm: MutableFarm) -> None:
    """At 00:45 with a 2-minute margin, the 00:40 window is still filling: not written; the
    load records 00:40 as complete-until, and a later run writes it."""
    target = mutable_farm.target
    at = datetime(D1.year, D1.month, D1.day, 0, 45, tzinfo=UTC)

    def clock(moment: datetime) -> Callable[[], datetime]:
        return lambda: moment

    _run(mutable_farm, D1, clock=clock(at), close_margin=timedelta(minutes=2))
    written = sorted(_target_signal(target, "WTG02", D1, "wind_speed_mean"))
    midnight = at.replace(hour=0, minute=0, tzinfo=None)
    assert written == [midnight + timedelta(minutes=m) for m in (0, 10, 20, 30)]
    with target.connect() as conn:
        until = conn.execute(
            text("SELECT DISTINCT complete_until FROM day_load WHERE day = :d"), {"d": D1}
        ).scalar_one()
    assert until == midnight.replace(tzinfo=UTC) + timedelta(minutes=40)
    # 00:43: still only the windows that ended by 00:40 (the margin). 00:52: 00:40 is closed.
    _run(mutable_farm, D1, clock=clock(at + timedelta(minutes=7)))
    assert len(_target_signal(target, "WTG02", D1, "wind_speed_mean")) == 5
    # A past day is complete whatever the margin.
    _run(mutable_farm, D0, close_margin=timedelta(days=1))
    assert len(_target_signal(target, "WTG02", D0, "wind_speed_mean")) == 144


def test_non_finite_samples_are_left_out_counted_and_never_loaded(
    mutable_farm: MutableFarm,
) -> None:
    source, target = mutable_farm.source, mutable_farm.target
    lo, _ = _hour(D0, 8)
    bad = {0: math.nan, 1: math.inf, 2: -math.inf}
    with source.begin() as conn:
        for minute, value in bad.items():
            conn.execute(
                text("UPDATE data SET power = :v WHERE turbine = 'WTG03' AND \"timestamp\" = :t"),
                {"v": value, "t": lo + timedelta(minutes=minute)},
            )
        conn.execute(
            text(
                "UPDATE data SET wind_speed = 'NaN' WHERE turbine = 'WTG03' AND \"timestamp\" = :t"
            ),
            {"t": lo + timedelta(minutes=5)},
        )
    _run(mutable_farm, D0)
    loaded = _target_signal(target, "WTG03", D0, "power_mean")
    assert loaded == pytest.approx(_sql_power_mean(source, "WTG03", D0), rel=1e-12)
    assert all(math.isfinite(v) for v in loaded.values())
    assert _day_load(target)[("WTG03", D0)][2] == 4  # three power values, one wind speed
    assert _day_load(target)[("WTG01", D0)][2] == 0
    with target.connect() as conn:
        held = conn.execute(
            text("SELECT count(*) FROM data WHERE value IN ('NaN', 'Infinity', '-Infinity')")
        ).scalar_one()
    assert held == 0
    # The target refuses one outright (the CHECK), whoever writes it.
    with (
        pytest.raises(sqlalchemy.exc.IntegrityError, match="ck_data_finite"),
        target.begin() as conn,
    ):
        conn.execute(
            text(
                'INSERT INTO data ("timestamp", signal_id, value) '
                "SELECT '2024-06-01T00:00Z', min(id), 'NaN' FROM signal"
            )
        )


def test_a_day_without_samples_has_the_empty_fingerprint(mutable_farm: MutableFarm) -> None:
    with ApiClient(mutable_farm.api.url, retries=0) as client:
        assert client.fingerprints(date(2024, 5, 30), date(2024, 5, 31)) == {}
    _run(mutable_farm, date(2024, 5, 31))
    loads = _day_load(mutable_farm.target)
    assert {v[0] for k, v in loads.items() if k[1] == date(2024, 5, 31)} == {EMPTY_FINGERPRINT}


def test_ids_are_surrogate_the_natural_key_is_stable(mutable_farm: MutableFarm) -> None:
    """The documented decision: a re-run replaces a day's rows (new ids); what identifies a row,
    (signal_id, timestamp), and its value stay the same."""

    def rows() -> dict[tuple[int, datetime], tuple[int, float]]:
        with mutable_farm.target.connect() as conn:
            held = conn.execute(text('SELECT signal_id, "timestamp", id, value FROM data'))
            return {(s, t): (i, v) for s, t, i, v in held}

    _run(mutable_farm, D0)
    first = rows()
    _run(mutable_farm, D0)
    second = rows()
    assert first.keys() == second.keys() and len(first) == 3 * 144 * 8
    assert all(first[k][1] == second[k][1] for k in first)  # the same values, bit for bit
    assert {i for i, _ in first.values()}.isdisjoint(i for i, _ in second.values())


def test_fingerprints_of_a_long_span_come_a_year_per_request(mutable_farm: MutableFarm) -> None:
    asked: list[str] = []

    def note(request: httpx.Request) -> None:
        if request.url.path == "/fingerprints":
            asked.append(f"{request.url.params['start']}..{request.url.params['end']}")

    with ApiClient(mutable_farm.api.url, event_hooks={"request": [note]}) as client:
        prints = client.fingerprints(date(2014, 1, 1), date(2024, 12, 31))  # 11 years
    assert {day for _, day in prints} == set(FARM_DAYS)
    assert len(asked) == 11 and asked[0] == "2014-01-01..2015-01-02"
