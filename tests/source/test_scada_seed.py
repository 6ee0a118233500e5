"""Seeding and feeding the SCADA signals: the columns a declared signal lacks are added, and the
energy counter carries on from the table's last reading (one reset per seeded span, none at the
seams between seeds or at the live feed's minutes)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import new_database
from windpipe.source import store
from windpipe.source.generator import farm
from windpipe.source.seed import append_minutes, seed_source

SCADA = ["wind_speed", "power", "ambient_temperature", "wind_direction", "nacelle_direction",
         "pitch_angle", "rotor_speed", "energy", "status"]  # fmt: skip
START = datetime(2023, 3, 1, tzinfo=UTC)
FLEET = farm(2)


@pytest.fixture
def source(target_url: URL) -> Iterator[Engine]:
    """A fresh source with the brief's columns only."""
    with new_database(target_url, "windpipe_scada_seed") as engine:
        store.ensure_schema(engine)
        yield engine


def _energy(engine: Engine, turbine: str) -> tuple[np.ndarray, np.ndarray]:
    with engine.connect() as conn:
        rows = conn.execute(
            text('SELECT "timestamp", energy, power FROM data WHERE turbine = :t ORDER BY 1'),
            {"t": turbine},
        ).all()
    return np.array([r[1] for r in rows], dtype=float), np.array([r[2] for r in rows], dtype=float)


def test_seed_adds_declared_columns_and_only_declared_ones_are_written(source: Engine) -> None:
    seed_source(source, START, START + timedelta(hours=6), turbines=FLEET, columns=SCADA[:4])
    held = store.column_types(source)
    assert "wind_direction" in held and "energy" not in held  # only what is declared
    seed_source(source, START, START + timedelta(hours=6), turbines=FLEET, columns=SCADA)
    held = store.column_types(source)
    assert all(held[c] == "double precision" for c in SCADA)
    with source.connect() as conn:
        nulls = conn.execute(
            text("SELECT count(*) FROM data WHERE " + " OR ".join(f"{c} IS NULL" for c in SCADA))  # noqa: S608
        ).scalar_one()
    assert nulls == 0


def test_the_counter_carries_on_across_seeds_and_the_live_feed(source: Engine) -> None:
    middle, end = START + timedelta(days=1, hours=5), START + timedelta(days=2)
    seed_source(source, START, middle, turbines=FLEET, columns=SCADA, seed=3)
    seed_source(source, middle, end, turbines=FLEET, columns=SCADA, seed=3)
    added = append_minutes(
        source, until=end + timedelta(minutes=29), turbines=FLEET, seed=3, columns=SCADA
    )
    assert added == 30 * len(FLEET)
    for spec in FLEET:
        energy, power = _energy(source, spec.id)
        assert len(energy) == 2 * 1440 + 30
        steps = np.diff(energy)
        drops = np.flatnonzero(steps < 0)
        assert len(drops) == 2  # one reset per seeded span, none at the seams
        assert np.all(energy >= 0)
        # Every other minute adds what the turbine delivered in it, across the seams too.
        rising = np.delete(np.arange(steps.size), drops)
        delivered = np.maximum(power[1:], 0.0) / 60.0
        assert np.allclose(steps[rising], delivered[rising], atol=1.1e-3)
        assert np.allclose(energy[drops + 1], delivered[drops], atol=1.1e-3)  # from 0
