"""Each 10-minute window's IEC 61400-26-1 category from the events that cover it."""

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from windpipe.catalog import (
    EVENT_CATEGORIES,
    check_event_category,
    event_category,
    unknown_codes,
    window_categories,
)

T0 = datetime(2024, 6, 1, 10, 0)
CODES = {"100": "scheduled_maintenance", "200": "forced_outage", "300": "requested_shutdown"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def events(*rows: tuple[str, float, float | None, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"turbine": t, "start": at(s), "end": None if e is None else at(e), "code": c}
            for t, s, e, c in rows
        ],
        schema={
            "turbine": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
            "code": pl.String,
        },
    )


def windows(turbine: str, count: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"turbine": [turbine] * count, "timestamp": [at(10 * i) for i in range(count)]}
    )


def categories(
    found: tuple[tuple[str, float, float | None, str], ...],
    count: int = 6,
    held: int | None = None,
    codes: dict[str, str] = CODES,
) -> list[str]:
    """The categories of WTG01's first ``count`` windows; the first ``held`` of them hold data
    (all when None)."""
    grid = windows("WTG01", count)
    kept = grid.head(count if held is None else held)
    result = window_categories(events(*found), grid, kept, codes)
    assert result["timestamp"].to_list() == [at(10 * i) for i in range(count)]
    return result["category"].to_list()


def test_the_categories_are_the_twelve_of_iec_61400_26_1_in_order() -> None:
    assert len(EVENT_CATEGORIES) == 12
    assert EVENT_CATEGORIES[0] == "full_performance"
    assert EVENT_CATEGORIES[-1] == "information_unavailable"
    assert check_event_category("suspended") == "suspended"
    with pytest.raises(ValueError, match="'stopped' is not an IEC 61400-26-1 category; accepted"):
        check_event_category("stopped")


def test_windows_no_event_covers_follow_the_data() -> None:
    assert categories((), count=4, held=2) == [
        "full_performance",
        "full_performance",
        "information_unavailable",
        "information_unavailable",
    ]


def test_an_event_gives_its_category_to_every_window_it_touches() -> None:
    # 10:05-10:25: half of window 0, all of window 1, half of window 2
    assert categories((("WTG01", 5, 25, "100"),), count=4) == [
        "scheduled_maintenance",
        "scheduled_maintenance",
        "scheduled_maintenance",
        "full_performance",
    ]


def test_an_event_ending_on_a_window_boundary_leaves_the_next_window() -> None:
    assert categories((("WTG01", 0, 10, "200"),), count=2) == ["forced_outage", "full_performance"]


def test_the_event_covering_most_of_a_window_wins() -> None:
    # window 0: 4 min of maintenance (100), 6 min of shutdown (300), later in time and larger
    # window 1: 7 min of shutdown, then 3 min of maintenance
    found = (("WTG01", 0, 4, "100"), ("WTG01", 4, 17, "300"), ("WTG01", 17, 20, "100"))
    assert categories(found, count=3) == [
        "requested_shutdown",
        "requested_shutdown",
        "full_performance",
    ]


def test_a_tie_goes_to_the_later_category_of_the_list() -> None:
    # 5 min each: scheduled maintenance (index 6) and requested shutdown (index 4), either order
    assert categories((("WTG01", 0, 5, "100"), ("WTG01", 5, 10, "300")), count=1) == [
        "scheduled_maintenance"
    ]
    assert categories((("WTG01", 0, 5, "300"), ("WTG01", 5, 10, "100")), count=1) == [
        "scheduled_maintenance"
    ]
    # forced outage (index 8) beats scheduled maintenance (index 6) on a tie
    assert categories((("WTG01", 0, 5, "100"), ("WTG01", 5, 10, "200")), count=1) == [
        "forced_outage"
    ]


def test_an_ongoing_event_covers_every_window_after_its_start() -> None:
    assert categories((("WTG01", 32, None, "300"),), count=6, held=2) == [
        "full_performance",
        "full_performance",
        "information_unavailable",
        "requested_shutdown",
        "requested_shutdown",
        "requested_shutdown",
    ]


def test_events_before_or_after_the_windows_and_of_other_turbines_do_not_count() -> None:
    found = (
        ("WTG01", -30, -5, "100"),  # ended before the first window
        ("WTG01", 60, 80, "100"),  # begins after the last one
        ("WTG02", 0, 60, "200"),  # another turbine
    )
    assert categories(found, count=6) == ["full_performance"] * 6


def test_an_event_begun_before_the_windows_covers_the_first() -> None:
    assert categories((("WTG01", -120, 3, "300"),), count=2) == [
        "requested_shutdown",
        "full_performance",
    ]


def test_an_unknown_code_is_a_forced_outage_and_is_reported() -> None:
    found = (("WTG01", 0, 10, "999"), ("WTG01", 10, 20, "300"))
    assert categories(found, count=3) == ["forced_outage", "requested_shutdown", "full_performance"]
    assert unknown_codes(events(*found), CODES) == ["999"]
    assert event_category("999", CODES) == "forced_outage"
    assert event_category("100", CODES) == "scheduled_maintenance"


def test_an_independent_minute_by_minute_count_agrees() -> None:
    """A random mix of events against a count of the minutes each event covers."""
    import random

    rng = random.Random(7)
    all_codes = [*CODES, "999"]
    found = []
    for _ in range(40):
        start = rng.randrange(-20, 300)
        length = rng.randrange(1, 40)
        end = None if rng.random() < 0.05 else start + length
        found.append(
            ("WTG01", float(start), None if end is None else float(end), rng.choice(all_codes))
        )
    # distinct (turbine, start, code), as the table's primary key makes them
    unique = list({(t, s, c): (t, s, e, c) for t, s, e, c in found}.values())
    count = 30
    got = categories(tuple(unique), count=count, held=20)
    rank = {c: i for i, c in enumerate(EVENT_CATEGORIES)}
    for w in range(count):
        best: tuple[int, int] | None = None
        for _, s, e, c in unique:
            covered = sum(1 for m in range(10 * w, 10 * w + 10) if s <= m and (e is None or m < e))
            if covered:
                key = (covered, rank[CODES.get(c, "forced_outage")])
                best = key if best is None or key > best else best
        expected = (
            EVENT_CATEGORIES[best[1]]
            if best is not None
            else ("full_performance" if w < 20 else "information_unavailable")
        )
        assert got[w] == expected, w


def test_event_codes_in_windpipe_toml_are_checked_naming_file_key_and_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from windpipe.errors import ConfigError
    from windpipe.settings import load_settings

    config = tmp_path / "windpipe.toml"
    monkeypatch.setenv("WINDPIPE_CONFIG", str(config))
    config.write_text(
        '[event_codes]\n"101" = { category = "scheduled_maintenance", description = "Service" }\n'
    )
    settings = load_settings(_env_file=None)
    assert settings.event_codes["101"].category == "scheduled_maintenance"
    assert settings.event_codes["101"].description == "Service"

    config.write_text('[event_codes]\n"102" = { category = "stopped" }\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert f"{config}: event_codes.102.category: 'stopped' is not an IEC 61400-26-1" in message
    assert "accepted: full_performance, partial_performance" in message
    assert "\n" not in message


def test_held_as_a_mask_of_the_windows_is_held_as_rows() -> None:
    grid = pl.concat([windows("WTG01", 8), windows("WTG02", 8)])
    held = pl.Series([i % 3 != 0 for i in range(16)])
    found = events(("WTG01", 5, 25, "100"), ("WTG02", 40, None, "999"))
    by_rows = window_categories(found, grid, grid.filter(held), CODES)
    assert window_categories(found, grid, held, CODES).equals(by_rows)
    with pytest.raises(ValueError, match="expected a Boolean per window"):
        window_categories(found, grid, held.head(3), CODES)
