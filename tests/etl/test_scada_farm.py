"""The synthetic farm speaks SCADA, end to end: the README's example windpipe.toml, a source with
none of its extra columns, ``seed_source`` as ``windpipe seed`` calls it (it adds them), a real
API on loopback and the daily ETL into a real target; the target checked against NumPy over the
source rows and the generator's own power."""

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import new_database, serve
from windpipe.api import create_app
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings, load_settings
from windpipe.source import store as source_store
from windpipe.source.generator import STOPPED, generate_day
from windpipe.source.seed import fleet_specs, seed_source

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _example() -> str:
    blocks = re.findall(r"^```toml\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
    (block,) = [b for b in blocks if "[signals.nacelle_direction]" in b]
    return block


@pytest.fixture
def scada(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The README's SCADA example in effect."""
    (tmp_path / "windpipe.toml").write_text(_example())
    monkeypatch.setenv("WINDPIPE_CONFIG", str(tmp_path / "windpipe.toml"))
    return load_settings(data_dir=settings.data_dir, _env_file=None)


def _stopped_day(scada: Settings) -> tuple[date, str]:
    """The first day from 2024-05-01 on which a turbine of the example stops for an hour or more
    (the generator's downtime), and that turbine: found by the generator, not by hand."""
    specs = fleet_specs(scada.turbines)
    day = date(2024, 5, 1)
    while True:
        table = generate_day(day, turbines=specs, seed=SEED)
        for spec in specs:
            status = table.filter(table["turbine"].to_numpy() == spec.id)["status"].to_numpy()
            if (status == STOPPED).sum() >= 60:
                return day, spec.id
        day += timedelta(days=1)


SEED = 42


@pytest.fixture
def databases(target_url: URL) -> Iterator[tuple[Engine, Engine]]:
    """A fresh source with the brief's columns only, and a fresh target."""
    with (
        new_database(target_url, "windpipe_scada_source") as source,
        new_database(target_url, "windpipe_scada_target") as target,
    ):
        source_store.ensure_schema(source)
        yield source, target


def _source(source: Engine, turbine: str) -> dict[str, np.ndarray]:
    with source.connect() as conn:
        rows = conn.execute(
            text(
                'SELECT "timestamp", power, energy, status, wind_direction FROM data '
                'WHERE turbine = :t ORDER BY "timestamp"'
            ),
            {"t": turbine},
        ).all()
    columns = list(zip(*rows, strict=True))
    out = {
        n: np.array(c, dtype=float)
        for n, c in zip(("power", "energy", "status", "wind_direction"), columns[1:], strict=True)
    }
    out["timestamp"] = np.array(
        [t.astimezone(UTC).replace(tzinfo=None) for t in columns[0]], dtype="datetime64[us]"
    )
    return out


def _loaded(target: Engine, name: str) -> dict[tuple[str, datetime], float]:
    with target.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.turbine, d.timestamp AT TIME ZONE 'UTC', d.value FROM data d "
                "JOIN signal s ON s.id = d.signal_id WHERE s.name = :n"
            ),
            {"n": name},
        )
        return {(t, w): v for t, w, v in rows}


def test_a_seeded_scada_farm_loads_its_directions_counter_and_states(
    scada: Settings, databases: tuple[Engine, Engine]
) -> None:
    source, target = databases
    day, stopping = _stopped_day(scada)
    before = day - timedelta(days=1)
    begin, end = (
        datetime.combine(before, datetime.min.time(), UTC),
        datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC),
    )
    columns = [v.column for v in scada.variables.values()]
    assert "energy" not in source_store.column_types(source)
    specs = fleet_specs(scada.turbines)
    seed_source(source, begin, end, turbines=specs, seed=SEED, columns=columns)
    held = source_store.column_types(source)
    assert {c: held[c] for c in columns} == dict.fromkeys(columns, "double precision")

    app = create_app(scada, source_conninfo=libpq_conninfo(source.url))
    with serve(app) as api, ApiClient(api.url) as client:
        ids = [spec.id for spec in specs]
        run_range(before, day, client=client, engine=target, rollup=scada.rollup, turbines=ids)

    deltas = _loaded(target, "energy_delta")
    for spec in specs:
        rows = _source(source, spec.id)
        energy, power = rows["energy"], rows["power"]
        drops = np.flatnonzero(np.diff(energy) < 0)
        assert len(drops) == 1  # the seeded span's one reset
        # The counter's increase: up to the reset, then from 0 to the last reading.
        increase = (energy[drops[0]] - energy[0]) + energy[-1]
        # ... which is what the turbine delivered after the first sample (to 1 Wh a sample).
        delivered = np.maximum(power[1:], 0.0).sum() / 60.0
        assert increase == pytest.approx(delivered, abs=1e-3 * len(power))
        mine = {w: v for (t, w), v in deltas.items() if t == spec.id}
        assert len(mine) == 2 * 144 and all(v >= 0 for v in mine.values())
        assert sum(mine.values()) == pytest.approx(increase, rel=1e-12)
        # The second day alone: from the first day's last reading (GET /data?last=true).
        second = datetime.combine(day, datetime.min.time())
        last_before = energy[rows["timestamp"] < np.datetime64(second)][-1]
        reset_on_second = rows["timestamp"][drops[0] + 1] >= np.datetime64(second)
        on_second = sum(v for w, v in mine.items() if w >= second)
        expected = (
            (energy[drops[0]] - last_before) + energy[-1]
            if reset_on_second
            else energy[-1] - last_before
        )
        assert on_second == pytest.approx(expected, rel=1e-12)

    for name in ("wind_direction_mean", "nacelle_direction_mean"):
        directions = _loaded(target, name)
        assert len(directions) == 2 * 144 * len(specs)  # every window of every turbine
        assert all(0.0 <= v < 360.0 for v in directions.values())

    # status_mode is the stop code in every window the downtime episode fills.
    rows = _source(source, stopping)
    windows = rows["timestamp"].astype("datetime64[m]").astype(np.int64) // 10
    modes = _loaded(target, "status_mode")
    full = [
        w
        for w in np.unique(windows)
        if np.all(rows["status"][windows == w] == STOPPED) and (windows == w).sum() == 10
    ]
    assert full
    for w in full:
        start = datetime(1970, 1, 1) + timedelta(minutes=int(w) * 10)
        assert modes[(stopping, start)] == STOPPED
    assert {v for (t, _), v in modes.items() if t == stopping} >= {STOPPED, 1.0}
