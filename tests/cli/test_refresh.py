"""``windpipe refresh`` (the change sensor without Dagster) and the CLI's word on NaN samples, as a
user runs them: real processes against a farm of the test's own."""

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.cli.test_etl import windpipe
from tests.conftest import FARM_DAYS, FARM_TURBINES, MutableFarm
from tests.etl.test_never_stale import _sql_power_mean, _target_signal

pytestmark = pytest.mark.slow
D0, D1 = FARM_DAYS
LOOK_BACK = ["--lookback-days", "3660"]  # the farm's days are in 2024


@pytest.fixture
def env(mutable_farm: MutableFarm, tmp_path: Path) -> dict[str, str]:
    return {
        "WINDPIPE_API_URL": mutable_farm.api.url,
        "WINDPIPE_TARGET_DB_URL": mutable_farm.target.url.render_as_string(hide_password=False),
        "WINDPIPE_TURBINES": json.dumps([{"id": t} for t in FARM_TURBINES]),
        "WINDPIPE_DATA_DIR": str(tmp_path),
    }


def test_refresh_reloads_exactly_what_changed(
    mutable_farm: MutableFarm, env: dict[str, str]
) -> None:
    loaded = windpipe("backfill", "--start", D0.isoformat(), "--end", D1.isoformat(), env=env)
    assert loaded.returncode == 0, loaded.stderr
    quiet = windpipe("refresh", *LOOK_BACK, env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.startswith("nothing stale: every loaded (turbine, day)")

    with mutable_farm.source.begin() as conn:
        conn.execute(
            text(
                "UPDATE data SET power = power + 250 WHERE turbine = 'WTG02' "
                "AND \"timestamp\" >= '2024-06-01 09:00+00' "
                "AND \"timestamp\" < '2024-06-01 10:00+00'"
            )
        )
    before = _target_signal(mutable_farm.target, "WTG02", D0, "power_mean")
    listed = windpipe("refresh", *LOOK_BACK, "--dry-run", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "stale: WTG02 2024-06-01 (changed)" in listed.stdout
    assert "--dry-run: nothing loaded" in listed.stdout
    assert _target_signal(mutable_farm.target, "WTG02", D0, "power_mean") == before

    done = windpipe("refresh", *LOOK_BACK, env=env)
    assert done.returncode == 0, done.stderr
    assert "refreshed 1 (turbine, day)(s) on 1 day(s)" in done.stdout
    after = _target_signal(mutable_farm.target, "WTG02", D0, "power_mean")
    assert after == pytest.approx(_sql_power_mean(mutable_farm.source, "WTG02", D0), rel=1e-12)
    assert after != before
    assert windpipe("refresh", *LOOK_BACK, env=env).stdout.startswith("nothing stale")


def test_etl_warns_of_samples_left_out(mutable_farm: MutableFarm, env: dict[str, str]) -> None:
    with mutable_farm.source.begin() as conn:
        conn.execute(
            text(
                "UPDATE data SET wind_speed = 'Infinity' WHERE turbine = 'WTG03' "
                "AND \"timestamp\" >= '2024-06-02 01:00+00' "
                "AND \"timestamp\" < '2024-06-02 01:03+00'"
            )
        )
    done = windpipe("etl", "--date", D1.isoformat(), env=env)
    assert done.returncode == 0, done.stderr
    assert "3 NaN/±Inf sample value(s) were left out of the aggregates: 2024-06-02 (3)" in (
        " ".join(done.stderr.split())
    )
