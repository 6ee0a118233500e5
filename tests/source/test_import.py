"""Imports of SCADA exports: real files in a temporary directory, a real PostgreSQL, real HTTP."""

import csv
import math
import random
import statistics
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import new_database, serve
from windpipe.api import create_app
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import libpq_conninfo
from windpipe.settings import ImportConfig, Settings, load_settings
from windpipe.source import importer
from windpipe.source.importer import FileReport, ImportFileError, import_file
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.warehouse.store import ensure_schema as ensure_target_schema

SIGNALS = {
    "wind_speed": "wind_speed",
    "power": "power",
    "ambient_temperature": "ambient_temperature",
}
#: The four turbines of ENGIE's La Haute Borne open data set (its export's column layout below).
FARM = ["R80711", "R80721", "R80736", "R80790"]
#: That export's layout: ';'-separated, a turbine name, local time with its UTC offset, then
#: ``<signal>_avg/_min/_max/_std`` columns (only a few of its ~140 here).
VENDOR_COLUMNS = ["Wind_turbine_name", "Date_time", "Ba_avg", "Rt_avg", "Ws_avg", "Ws_min"]
VENDOR_COLUMNS += ["P_avg", "P_std", "Ot_avg"]
HAUTE_BORNE = ImportConfig(
    delimiter=";",
    time_column="Date_time",
    turbine_column="Wind_turbine_name",
    columns={"Ws_avg": "wind_speed", "P_avg": "power", "Ot_avg": "ambient_temperature"},
)
PARIS = "Europe/Paris"


@pytest.fixture(scope="module")
def source(source_url: URL) -> Iterator[Engine]:
    """A source database of its own for this module."""
    with new_database(source_url, "windpipe_import_source") as engine:
        ensure_source_schema(engine)
        yield engine


@pytest.fixture
def empty(source: Engine) -> Engine:
    """The module's source with no rows."""
    with source.begin() as conn:
        conn.execute(text("TRUNCATE data"))
    return source


def rows_of(engine: Engine) -> list[tuple[Any, ...]]:
    """Every source row as (turbine, timestamp, wind_speed, power, ambient_temperature)."""
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    'SELECT turbine, "timestamp", wind_speed, power, ambient_temperature '
                    'FROM data ORDER BY turbine, "timestamp"'
                )
            )
        ]


def run(
    path: Path,
    engine: Engine | None,
    mapping: ImportConfig = HAUTE_BORNE,
    *,
    fleet: list[str] = FARM,
    **options: Any,
) -> FileReport:
    return import_file(path, mapping, signals=SIGNALS, fleet=fleet, engine=engine, **options)


def paris(local: str) -> str:
    """A Paris wall-clock time with its offset, as the export writes it."""
    moment = datetime.fromisoformat(local)
    offset = 2 if date(2017, 3, 26) <= moment.date() < date(2017, 10, 29) else 1
    if moment.date() == date(2017, 3, 26) and moment.hour < 2:
        offset = 1
    return f"{local}+0{offset}:00"


def vendor_rows(start: datetime, steps: int, seed: int = 3) -> list[list[str]]:
    """10-minute rows of the farm in the export's order (time, then turbine), UTC ``start``, with
    a gap, a negative power, a missing temperature; timestamps in Paris time with offsets."""
    rng = random.Random(seed)
    rows = []
    for step in range(steps):
        moment = start + timedelta(minutes=10 * step)
        local = moment.astimezone(__import__("zoneinfo").ZoneInfo(PARIS))
        stamp = local.isoformat()
        for turbine in FARM:
            if turbine == "R80736" and 20 <= step < 26:  # an hour missing: a gap
                continue
            wind = round(rng.uniform(2, 14), 2)
            power = round(max(-8.0, (wind - 3) ** 3 * 1.5 + rng.uniform(-5, 5)), 2)
            temperature = "" if (step + len(turbine)) % 17 == 0 else f"{rng.uniform(2, 9):.2f}"
            rows.append(
                [
                    turbine,
                    stamp,
                    "1.5",
                    "12.0",
                    str(wind),
                    str(wind - 1),
                    str(power),
                    "3.1",
                    temperature,
                ]
            )
    rows[5][6] = "-6.25"  # own consumption
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ";") -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def expected_rows(rows: list[list[str]]) -> list[tuple[Any, ...]]:
    """What the source should hold, computed without windpipe: last row per key wins."""
    held: dict[tuple[str, datetime], tuple[Any, ...]] = {}
    for row in rows:
        moment = datetime.fromisoformat(row[1]).astimezone(UTC)
        values = [float(v) if v else None for v in (row[4], row[6], row[8])]
        held[(row[0], moment)] = (row[0], moment, *values)
    return [held[key] for key in sorted(held)]


START = datetime(2017, 3, 25, 21, 0, tzinfo=UTC)  # the night Paris goes to summer time


@pytest.fixture
def vendor_csv(tmp_path: Path) -> tuple[Path, list[list[str]]]:
    rows = vendor_rows(START, 60)
    rows.insert(40, list(rows[12]))  # a duplicate row, further down the file
    return write_csv(tmp_path / "la-haute-borne.csv", VENDOR_COLUMNS, rows), rows


def test_a_vendor_export_lands_as_the_same_rows_in_utc(
    empty: Engine, vendor_csv: tuple[Path, list[list[str]]]
) -> None:
    path, rows = vendor_csv
    report = run(path, empty)
    expected = expected_rows(rows)
    assert rows_of(empty) == expected
    assert report.rows == report.inserted == len(expected) == 4 * 60 - 6
    assert report.rows_read == len(rows) and report.changed == 0
    assert report.ignored == ["Ba_avg", "Rt_avg", "Ws_min", "P_std"]
    assert report.turbines["R80736"] == 54 and report.first == START
    assert report.nulls == {
        "wind_speed": 0,
        "power": 0,
        "ambient_temperature": sum(1 for r in expected if r[4] is None),
    }
    assert min(r[3] for r in expected) == -6.25  # a negative power is a value, not an error
    # the offsets switch from +01:00 to +02:00 mid-file: UTC is continuous, 10 minutes apart
    stamps = [r[1] for r in rows_of(empty) if r[0] == "R80711"]
    assert {b - a for a, b in pairwise(stamps)} == {timedelta(minutes=10)}
    assert any("+01:00" in r[1] for r in rows) and any("+02:00" in r[1] for r in rows)


def test_importing_the_same_file_again_changes_nothing(
    empty: Engine, vendor_csv: tuple[Path, list[list[str]]]
) -> None:
    path, _ = vendor_csv
    run(path, empty)
    before = rows_of(empty)
    again = run(path, empty)
    assert rows_of(empty) == before
    assert (again.inserted, again.changed, again.unchanged) == (0, 0, len(before))


def test_a_later_overlapping_import_replaces_the_values_it_maps_and_keeps_the_rest(
    empty: Engine, tmp_path: Path, vendor_csv: tuple[Path, list[list[str]]]
) -> None:
    path, rows = vendor_csv
    run(path, empty)
    first = rows_of(empty)
    # a corrected power-only export of the first two hours, one row past the end
    corrected = [[r[0], r[1], str(float(r[6]) + 1)] for r in rows[:40]]
    later = START + timedelta(minutes=600)
    corrected.append(["R80711", later.isoformat(), "42.0"])
    power_only = write_csv(
        tmp_path / "power.csv", ["Wind_turbine_name", "Date_time", "P_avg"], corrected
    )
    mapping = HAUTE_BORNE.model_copy(update={"columns": {"P_avg": "power"}})
    report = run(power_only, empty, mapping)
    now = {(r[0], r[1]): r for r in rows_of(empty)}
    assert report.inserted == 1 and report.changed == 40
    for old in first:
        new = now[(old[0], old[1])]
        assert new[2] == old[2] and new[4] == old[4]  # wind speed and temperature kept
        touched = any(r[0] == old[0] and datetime.fromisoformat(r[1]) == old[1] for r in corrected)
        assert new[3] == (old[3] + 1 if touched else old[3])
    assert now[("R80711", later)][2:] == (None, 42.0, None)


def test_a_bad_value_names_file_line_and_column_and_imports_nothing(
    empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CSV_BLOCK_BYTES", 4096)  # many batches: earlier ones roll back
    rows = vendor_rows(START, 200)
    rows[700][6] = "12,5"  # a decimal comma
    path = write_csv(tmp_path / "bad.csv", VENDOR_COLUMNS, rows)
    with pytest.raises(ImportFileError) as caught:
        run(path, empty)
    assert str(caught.value).startswith(
        f"{path}: line 702, column 'P_avg': non-numeric value '12,5'; nothing was imported"
    )
    assert rows_of(empty) == []


def test_bad_rows_are_skipped_on_request_and_counted_by_reason(
    empty: Engine, tmp_path: Path
) -> None:
    rows = vendor_rows(START, 30)
    rows[3][6] = "n/a?"
    rows[4][4] = "fast"
    rows[9][1] = "2017-03-25 99:00"
    rows[11][0] = "R8 07 11"
    rows[12][1] = ""
    path = write_csv(tmp_path / "bad.csv", VENDOR_COLUMNS, rows)
    report = run(path, empty, skip_bad_rows=True)
    assert dict(report.skipped) == {
        "non-numeric value (P_avg)": 1,
        "non-numeric value (Ws_avg)": 1,
        "unparseable timestamp (Date_time)": 1,
        "bad turbine id (letters, digits, _ . - only) (Wind_turbine_name)": 1,
        "missing timestamp (Date_time)": 1,
    }
    assert len(rows_of(empty)) == report.rows == len(rows) - 5


def test_a_mapped_column_missing_from_the_file_is_named(empty: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "short.csv", ["Wind_turbine_name", "Date_time", "Ws_avg"], [])
    with pytest.raises(
        ImportFileError, match=r"short.csv: line 1: columns P_avg, Ot_avg not in the file"
    ):
        run(path, empty)


def test_unknown_turbines_are_refused_unless_allowed(empty: Engine, tmp_path: Path) -> None:
    rows = vendor_rows(START, 3)
    path = write_csv(tmp_path / "farm.csv", VENDOR_COLUMNS, rows)
    with pytest.raises(ImportFileError) as caught:
        run(path, empty, fleet=["R80711", "R80721"])
    assert "line 4, column 'Wind_turbine_name': turbine not in the configuration 'R80736'" in str(
        caught.value
    )
    assert "--allow-new-turbines" in str(caught.value) and rows_of(empty) == []
    report = run(path, empty, fleet=["R80711", "R80721"], allow_new_turbines=True)
    assert report.new_turbines == ["R80736", "R80790"] and len(rows_of(empty)) == 12
    with pytest.raises(ImportFileError, match="turbine 'WTG09' is not in the configuration"):
        run(path, empty, ImportConfig(turbine="WTG09", time_column="Date_time"))


def test_naive_local_times_need_a_zone_and_dst_ambiguity_is_an_error_naming_the_row(
    empty: Engine, tmp_path: Path
) -> None:
    # Paris falls back at 03:00 summer time on 2017-10-29: 02:00..02:50 happen twice.
    walls = [f"2017-10-29 0{h}:{m}0:00" for h in (1, 2) for m in range(6)]
    walls += [f"2017-10-29 02:{m}0:00" for m in range(6)] + ["2017-10-29 03:00:00"]
    rows = [["WTG01", wall, str(i)] for i, wall in enumerate(walls)]
    path = write_csv(tmp_path / "naive.csv", ["turbine", "time", "power"], rows, delimiter=",")
    mapping = ImportConfig(time_column="time")
    with pytest.raises(
        ImportFileError,
        match=r"line 2, column 'time': '2017-10-29 01:00:00' has no UTC offset; give --timezone",
    ):
        run(path, empty, mapping, fleet=["WTG01"])
    zoned = mapping.model_copy(update={"timezone": PARIS})
    with pytest.raises(ImportFileError) as caught:
        run(path, empty, zoned, fleet=["WTG01"])
    assert (
        "line 8, column 'time': ambiguous local time in Europe/Paris '2017-10-29 02:00:00'"
        in str(caught.value)
    )
    # infer: the first 02:xx is summer time (UTC+2), the repeat winter time (UTC+1)
    report = run(path, empty, zoned.model_copy(update={"ambiguous": "infer"}), fleet=["WTG01"])
    stamps = [r[1] for r in rows_of(empty)]
    assert report.rows == 19 and stamps[0] == datetime(2017, 10, 28, 23, 0, tzinfo=UTC)
    assert {b - a for a, b in pairwise(stamps)} == {timedelta(minutes=10)}
    # earliest / latest fold the repeat onto one hour: the file's last row per instant wins
    for policy in ("earliest", "latest"):
        with empty.begin() as conn:
            conn.execute(text("TRUNCATE data"))
        report = run(path, empty, zoned.model_copy(update={"ambiguous": policy}), fleet=["WTG01"])
        held = {r[1]: r[3] for r in rows_of(empty)}
        assert report.rows == 13 and report.duplicates == 6
        fold = datetime(2017, 10, 29, 0 if policy == "earliest" else 1, 0, tzinfo=UTC)
        assert held[fold] == 12.0


def test_a_time_that_does_not_exist_locally_is_an_error(empty: Engine, tmp_path: Path) -> None:
    rows = [["WTG01", "2017-03-26 01:50", "1"], ["WTG01", "2017-03-26 02:10", "2"]]
    path = write_csv(tmp_path / "spring.csv", ["turbine", "timestamp", "power"], rows, ",")
    mapping = ImportConfig(timezone=PARIS, ambiguous="infer")
    with pytest.raises(
        ImportFileError,
        match=r"line 3, column 'timestamp': nonexistent local time in Europe/Paris "
        r"'2017-03-26 02:10'",
    ):
        run(path, empty, mapping, fleet=["WTG01"])


def test_epoch_seconds_and_a_single_turbine_per_file(empty: Engine, tmp_path: Path) -> None:
    rows = [[str(1_500_000_000 + 60 * i), str(5.0 + i)] for i in range(5)]
    path = write_csv(tmp_path / "wtg01.csv", ["ts", "wind"], rows, ",")
    mapping = ImportConfig(time_column="ts", turbine="WTG01", columns={"wind": "wind_speed"})
    report = run(path, empty, mapping, fleet=["WTG01"])
    held = rows_of(empty)
    assert report.rows == 5 and held[0][:3] == (
        "WTG01",
        datetime(2017, 7, 14, 2, 40, tzinfo=UTC),
        5.0,
    )
    assert held[0][3:] == (None, None)


def test_parquet_gives_the_same_rows_as_csv(
    empty: Engine, tmp_path: Path, vendor_csv: tuple[Path, list[list[str]]]
) -> None:
    path, _ = vendor_csv
    run(path, empty)
    from_csv = rows_of(empty)
    frame = pl.read_csv(path, separator=";", infer_schema_length=0).with_columns(
        pl.col("Date_time").str.to_datetime("%+", time_zone="UTC"),
        pl.col("Ws_avg", "P_avg", "Ot_avg").cast(pl.Float64),
    )
    parquet = tmp_path / "export.parquet"
    frame.write_parquet(parquet, row_group_size=50)
    with empty.begin() as conn:
        conn.execute(text("TRUNCATE data"))
    report = run(parquet, empty, HAUTE_BORNE.model_copy(update={"delimiter": ","}))
    assert rows_of(empty) == from_csv and report.rows == len(from_csv)
    # epoch seconds as integers, a naive Parquet timestamp with a zone
    table = pa.table(
        {
            "turbine": ["R80711"] * 3,
            "t": pa.array([datetime(2017, 7, 1, 12, m) for m in (0, 10, 20)], pa.timestamp("ms")),
            "wind_speed": [1.0, float("nan"), 3.0],
        }
    )
    pq.write_table(table, tmp_path / "naive.parquet")
    report = run(tmp_path / "naive.parquet", None, ImportConfig(time_column="t", timezone=PARIS))
    assert report.first == datetime(2017, 7, 1, 10, 0, tzinfo=UTC)
    assert report.nulls == {"wind_speed": 1}


def test_a_dry_run_reports_and_writes_nothing(
    empty: Engine, vendor_csv: tuple[Path, list[list[str]]]
) -> None:
    path, rows = vendor_csv
    report = run(path, None)
    assert rows_of(empty) == []
    assert report.rows == len(expected_rows(rows)) and report.duplicates == 1
    assert report.nulls["ambient_temperature"] > 0 and report.inserted == 0


def test_import_mappings_in_the_file_are_validated_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "windpipe.toml"
    monkeypatch.setenv("WINDPIPE_CONFIG", str(config))
    config.write_text('[imports.hb]\ntime_column = "Date_time"\ncolums = {}\n')
    with pytest.raises(
        ValueError,
        match=r"windpipe.toml: imports.hb.colums: unknown key \(did you mean columns\?\); "
        "accepted: format, delimiter",
    ):
        load_settings(_env_file=None)
    config.write_text('[imports.hb]\ncolumns = { P_avg = "pwr" }\n')
    with pytest.raises(
        ValueError, match=r"imports.hb.columns.P_avg: 'pwr' is not a configured signal"
    ):
        load_settings(_env_file=None)
    config.write_text('[imports.hb]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(
        ValueError, match=r"imports.hb.timezone: 'Mars/Olympus' is not an IANA time zone"
    ):
        load_settings(_env_file=None)
    config.write_text('[imports.hb]\nturbine = "A"\nturbine_column = "B"\n')
    with pytest.raises(ValueError, match=r"imports.hb: .*turbine_column .* or turbine, not both"):
        load_settings(_env_file=None)
    config.write_text('[imports.hb]\ndelimiter = ";"\ncolumns = { P_avg = "power" }\n')
    assert load_settings(_env_file=None).imports["hb"].columns == {"P_avg": "power"}


# -- the API and the ETL on imported data --------------------------------------------------------


@pytest.fixture
def api(settings: Settings, source: Engine) -> Iterator[str]:
    """The connector API on the module's source, with the farm configured."""
    farm = load_settings(
        data_dir=settings.data_dir, _env_file=None, turbines=[{"id": t} for t in FARM]
    )
    with serve(create_app(farm, source_conninfo=libpq_conninfo(source.url))) as live:
        yield live.url


def expected_aggregates(
    rows: list[tuple[Any, ...]], window: timedelta
) -> dict[tuple[str, str, datetime], float]:
    """(turbine, signal, window start) -> value, computed with the statistics module."""
    groups: dict[tuple[str, str, datetime], list[float]] = {}
    for turbine, moment, wind, power, _ in rows:
        naive = moment.astimezone(UTC).replace(tzinfo=None)  # the target's timestamps: naive UTC
        start = datetime.min + (naive - datetime.min) // window * window
        for variable, value in (("wind_speed", wind), ("power", power)):
            if value is not None:
                groups.setdefault((turbine, variable, start), []).append(value)
    answer = {}
    for (turbine, variable, start), values in groups.items():
        answer[(turbine, f"{variable}_mean", start)] = statistics.fmean(values)
        answer[(turbine, f"{variable}_min", start)] = min(values)
        answer[(turbine, f"{variable}_max", start)] = max(values)
        if len(values) > 1:
            answer[(turbine, f"{variable}_std", start)] = statistics.stdev(values)
    return answer


def test_the_api_and_the_etl_see_an_import_at_once(
    empty: Engine, vendor_csv: tuple[Path, list[list[str]]], api: str, target_url: URL
) -> None:
    path, rows = vendor_csv
    assert httpx.get(f"{api}/coverage").json()["first"] is None
    run(path, empty)
    coverage = httpx.get(f"{api}/coverage").json()
    held = expected_rows(rows)
    assert coverage["rows"] == len(held) and coverage["first"] == "2017-03-25T21:00:00Z"
    turbines = {t["id"]: t["rows"] for t in httpx.get(f"{api}/turbines").json()}
    assert turbines == {"R80711": 60, "R80721": 60, "R80736": 54, "R80790": 60}

    with new_database(target_url, "windpipe_import_target") as target, ApiClient(api) as client:
        ensure_target_schema(target)
        for window in (timedelta(minutes=10), timedelta(hours=1)):
            run_range(
                date(2017, 3, 25),
                date(2017, 3, 26),
                client=client,
                engine=target,
                variables=["wind_speed", "power"],
                aggregations=["mean", "min", "max", "std"],
                turbines=FARM,
                window=window,
            )
            with target.connect() as conn:
                written = {
                    (turbine, name, moment): value
                    for turbine, name, moment, value in conn.execute(
                        text(
                            "SELECT s.turbine, s.name, d.timestamp AT TIME ZONE 'UTC', d.value "
                            "FROM data d "
                            "JOIN signal s ON s.id = d.signal_id"
                        )
                    )
                }
            expected = expected_aggregates(held, window)
            assert written.keys() == expected.keys()
            assert all(
                math.isclose(written[k], v, rel_tol=1e-9, abs_tol=1e-9) for k, v in expected.items()
            )
            if window == timedelta(minutes=10):  # one sample per window: no std at all
                assert not any(name.endswith("_std") for _, name, _ in written)
