"""Imports of 10-minute exports (period statistics): NumPy computes each period's statistics from
1 Hz samples, the export is written in ENGIE's La Haute Borne layout, imported into a real
PostgreSQL and read back through the real API."""

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import new_database, serve
from windpipe.api import create_app
from windpipe.etl.extract import ApiClient
from windpipe.postgres import ensure_reader_role, libpq_conninfo
from windpipe.settings import ImportConfig, Settings, load_settings
from windpipe.source.importer import FileReport, ImportFileError, import_file
from windpipe.source.store import ensure_schema as ensure_source_schema

SIGNALS = {
    "wind_speed": "wind_speed",
    "power": "power",
    "ambient_temperature": "ambient_temperature",
}
FARM = ["R80711", "R80721"]
PARIS = ZoneInfo("Europe/Paris")
START = datetime(2021, 6, 1, 0, 0, tzinfo=UTC)
HOURS = 4
PERIOD = 600  # 10 minutes of 1 Hz samples
STATS = ("mean", "min", "max", "std", "count")
#: ENGIE's La Haute Borne layout: ``<signal>_avg/_min/_max/_std`` per signal, times in local time
#: with their offset; here labelled by the end of their period.
HEADER = ["Wind_turbine_name", "Date_time", "Ws_avg", "Ws_min", "Ws_max", "Ws_std"]
HEADER += ["P_avg", "P_min", "P_max", "P_std"]
HAUTE_BORNE = ImportConfig(
    delimiter=";",
    time_column="Date_time",
    turbine_column="Wind_turbine_name",
    period="10min",
    label="end",
    columns={
        "Ws_avg": "wind_speed:mean",
        "Ws_min": "wind_speed:min",
        "Ws_max": "wind_speed:max",
        "Ws_std": "wind_speed:std",
        "P_avg": "power:mean",
        "P_min": "power:min",
        "P_max": "power:max",
        "P_std": "power:std",
    },
)


def raw_samples(seed: int) -> dict[str, np.ndarray]:
    """HOURS of 1 Hz wind speed and power of one turbine: a random walk and a cubic curve."""
    rng = np.random.default_rng(seed)
    n = HOURS * 3600
    wind = np.clip(8 + np.cumsum(rng.normal(0, 0.05, n)) + rng.normal(0, 0.6, n), 0, None)
    power = np.clip(0.45 * wind**3 + rng.normal(0, 20, n), -15, 2050)
    return {"wind_speed": wind, "power": power}


def period_statistics(values: np.ndarray) -> dict[str, np.ndarray]:
    """Each 10-minute period's mean, min, max, sample std and count, computed by NumPy."""
    periods = values.reshape(-1, PERIOD)
    return {
        "mean": periods.mean(axis=1),
        "min": periods.min(axis=1),
        "max": periods.max(axis=1),
        "std": periods.std(axis=1, ddof=1),
        "count": np.full(len(periods), float(PERIOD)),
    }


@pytest.fixture(scope="module")
def raw() -> dict[str, dict[str, np.ndarray]]:
    return {turbine: raw_samples(seed) for seed, turbine in enumerate(FARM, start=80)}


def export_lines(raw: dict[str, dict[str, np.ndarray]]) -> list[list[str]]:
    """The export's rows, in time then turbine order, each period labelled by its end in Paris
    time with its offset (the values as Python writes floats: they read back exactly)."""
    stats = {t: {s: period_statistics(v) for s, v in signals.items()} for t, signals in raw.items()}
    rows = []
    for k in range(HOURS * 6):
        end = (START + timedelta(minutes=10 * (k + 1))).astimezone(PARIS).isoformat()
        for turbine in FARM:
            row = [turbine, end]
            for signal in ("wind_speed", "power"):
                row += [repr(float(stats[turbine][signal][s][k])) for s in STATS[:4]]
            rows.append(row)
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join(";".join(r) for r in [header, *rows]) + "\n")
    return path


@pytest.fixture
def export(tmp_path: Path, raw: dict[str, dict[str, np.ndarray]]) -> Path:
    return write_csv(tmp_path / "la-haute-borne-10min.csv", HEADER, export_lines(raw))


@pytest.fixture(scope="module")
def source(source_url: URL) -> Iterator[Engine]:
    """A source database of its own for this module (it gains statistics columns)."""
    with new_database(source_url, "windpipe_import_statistics") as engine:
        ensure_source_schema(engine)
        yield engine


@pytest.fixture
def empty(source: Engine) -> Engine:
    with source.begin() as conn:
        conn.execute(text("TRUNCATE data"))
    return source


@pytest.fixture(scope="module")
def farm_settings(settings: Settings) -> Settings:
    return load_settings(
        data_dir=settings.data_dir, _env_file=None, turbines=[{"id": t} for t in FARM]
    )


@pytest.fixture(scope="module")
def api(farm_settings: Settings, source: Engine) -> Iterator[str]:
    """The connector API on the module's source."""
    with serve(create_app(farm_settings, source_conninfo=libpq_conninfo(source.url))) as live:
        yield live.url


def run(path: Path, engine: Engine | None, mapping: ImportConfig = HAUTE_BORNE) -> FileReport:
    return import_file(path, mapping, signals=SIGNALS, fleet=FARM, engine=engine)


def read(api: str, variables: str, **params: str) -> pa.Table:
    """``/data`` of the test's hours as an Arrow table."""
    query = {
        "start": START.isoformat(),
        "end": (START + timedelta(hours=HOURS)).isoformat(),
        "variables": variables,
        "format": "arrow",
        **params,
    }
    response = httpx.get(f"{api}/data", params=query, timeout=60)
    assert response.status_code == 200, response.text
    return pa.ipc.open_stream(response.content).read_all()


def columns_of(source: Engine) -> list[str]:
    with source.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT attname FROM pg_attribute WHERE attrelid = 'data'::regclass "
                    "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
                )
            ).scalars()
        )


def test_an_end_labelled_export_is_stored_by_period_start_with_its_statistics(
    empty: Engine, export: Path, api: str, raw: dict[str, dict[str, np.ndarray]]
) -> None:
    report = run(export, empty)
    assert report.rows == report.inserted == 2 * HOURS * 6
    assert report.first == START  # the period [00:00, 00:10) is labelled 00:10 in the file
    assert report.last == START + timedelta(hours=HOURS, minutes=-10)
    # the import added the statistics columns it writes: no DDL by hand
    assert {"wind_speed__min", "wind_speed__std", "wind_speed__count", "power__max"} <= set(
        columns_of(empty)
    )
    table = read(api, "wind_speed,power")
    assert table.column_names == [
        "turbine",
        "timestamp",
        *(f"{v}{'' if s == 'mean' else '__' + s}" for v in ("wind_speed", "power") for s in STATS),
    ]
    assert all(table.schema.field(c).type == pa.float64() for c in table.column_names[2:])
    for turbine in FARM:
        rows = table.filter(pa.compute.equal(table["turbine"], turbine))
        starts = [START + timedelta(minutes=10 * k) for k in range(HOURS * 6)]
        assert rows["timestamp"].to_pylist() == starts
        for signal in ("wind_speed", "power"):
            expected = period_statistics(raw[turbine][signal])
            for stat in STATS:
                column = signal if stat == "mean" else f"{signal}__{stat}"
                # Python's float repr reads back as the same double: exact equality
                assert np.array_equal(rows[column].to_numpy(), expected[stat]), (signal, stat)
    # count: the samples_per_period default, the period in seconds (1 Hz)
    assert set(table["wind_speed__count"].to_pylist()) == {600.0}
    # a variable without statistics is served as before, alone
    assert read(api, "ambient_temperature").column_names == [
        "turbine",
        "timestamp",
        "ambient_temperature",
    ]
    # the JSON and CSV answers carry the same columns
    first = httpx.get(
        f"{api}/data",
        params={"start": START.isoformat(), "end": "2021-06-01T00:10Z", "variables": "wind_speed"},
    ).json()[0]
    assert list(first) == [
        "turbine",
        "timestamp",
        "wind_speed",
        *(f"wind_speed__{s}" for s in STATS[1:]),
    ]
    csv_head = httpx.get(
        f"{api}/data",
        params={"start": START.isoformat(), "end": "2021-06-01T00:10Z", "format": "csv"},
    ).text.splitlines()[0]
    assert csv_head.startswith("turbine,timestamp,wind_speed,wind_speed__min,")


def test_the_etl_client_keeps_the_statistics_and_raw_rows_leave_them_null(
    empty: Engine, export: Path, api: str, tmp_path: Path
) -> None:
    run(export, empty)
    # raw samples of another hour: their statistics columns are null
    later = START + timedelta(hours=HOURS)
    raw_rows = [
        ["R80711", (later + timedelta(seconds=s)).isoformat(), f"{5 + s / 100}"] for s in range(3)
    ]
    plain = ImportConfig(
        delimiter=";",
        time_column="Date_time",
        turbine_column="Wind_turbine_name",
        columns={"Ws": "wind_speed"},
    )
    run(
        write_csv(tmp_path / "raw.csv", ["Wind_turbine_name", "Date_time", "Ws"], raw_rows),
        empty,
        plain,
    )
    with ApiClient(api) as client:
        frame = client.fetch_frame(START, later + timedelta(hours=1), ["wind_speed"], ["R80711"])
    assert frame.columns == [
        "turbine",
        "timestamp",
        "wind_speed",
        *(f"wind_speed__{s}" for s in STATS[1:]),
    ]
    tail = frame.tail(3)
    assert tail["wind_speed"].to_list() == [5.0, 5.01, 5.02]
    assert all(tail[f"wind_speed__{s}"].null_count() == 3 for s in STATS[1:])
    assert frame.height == HOURS * 6 + 3


def test_a_count_column_is_stored_as_given_and_a_start_label_as_is(
    empty: Engine, tmp_path: Path, api: str
) -> None:
    rows = [
        ["R80711", "2021-06-01T02:00:00+02:00", "6.5", "1.0", "598"],
        ["R80711", "2021-06-01T02:10:00+02:00", "7.5", "0.5", "12"],
    ]
    mapping = ImportConfig(
        delimiter=";",
        time_column="Date_time",
        turbine_column="Wind_turbine_name",
        period="10min",
        columns={
            "Ws_avg": "wind_speed:mean",
            "Ws_std": "wind_speed:std",
            "Ws_n": "wind_speed:count",
        },
    )
    header = ["Wind_turbine_name", "Date_time", "Ws_avg", "Ws_std", "Ws_n"]
    run(write_csv(tmp_path / "counted.csv", header, rows), empty, mapping)
    table = read(api, "wind_speed")
    assert table["timestamp"].to_pylist() == [START, START + timedelta(minutes=10)]
    assert table["wind_speed__count"].to_pylist() == [598.0, 12.0]
    assert table["wind_speed__std"].to_pylist() == [1.0, 0.5]
    # min and max are not held for this signal's rows: null (the columns exist from no import
    # here, or from an earlier one: then this file clears them, never mixing two files' values)
    if "wind_speed__min" in table.column_names:
        assert table["wind_speed__min"].null_count == 2
    # samples_per_period stands in for a count column
    per = mapping.model_copy(
        update={"samples_per_period": 60, "columns": {"Ws_avg": "wind_speed:mean"}}
    )
    run(write_csv(tmp_path / "per.csv", header, rows), empty, per)
    assert read(api, "wind_speed")["wind_speed__count"].to_pylist() == [60.0, 60.0]
    assert read(api, "wind_speed")["wind_speed__std"].null_count == 2


def test_a_reimport_of_changed_statistics_moves_the_days_fingerprint(
    empty: Engine, export: Path, api: str, raw: dict[str, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    def prints() -> dict[str, str]:
        body = httpx.get(f"{api}/fingerprints", params={"start": "2021-06-01", "end": "2021-06-02"})
        return {row["turbine"]: row["fingerprint"] for row in body.json()}

    run(export, empty)
    before = prints()
    again = run(export, empty)
    assert (again.inserted, again.changed) == (0, 0) and prints() == before
    lines = export_lines(raw)
    lines[3][5] = repr(float(lines[3][5]) * 1.01)  # one std of R80721, 00:10..00:20
    changed = run(write_csv(tmp_path / "corrected.csv", HEADER, lines), empty)
    assert changed.changed == 1
    after = prints()
    assert after["R80711"] == before["R80711"] and after["R80721"] != before["R80721"]


def test_the_read_only_role_reads_statistics_columns_added_after_its_grant(
    farm_settings: Settings, source_url: URL, export: Path
) -> None:
    with new_database(source_url, "windpipe_import_statistics_role") as source:
        ensure_source_schema(source)
        role = "windpipe_statistics_reader"
        ensure_reader_role(source, role, None)  # before any statistics column exists
        try:
            assert "wind_speed__std" not in columns_of(source)
            conninfo = libpq_conninfo(source.url.set(username=role))
            with serve(create_app(farm_settings, source_conninfo=conninfo)) as live:
                run(export, source)
                table = read(live.url, "wind_speed")
                assert table["wind_speed__std"].null_count == 0
                assert httpx.get(f"{live.url}/health").json()["status"] == "ok"
        finally:
            with source.begin() as conn:  # its grants here, then the role itself
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE "{role}"'))


# -- last=true: each turbine's latest complete sample --------------------------------------------


def test_last_serves_each_turbines_latest_complete_row(
    empty: Engine, api: str, tmp_path: Path
) -> None:
    rows = [
        ["R80711", "2021-06-01T00:00:00Z", "5.0", "100"],
        ["R80711", "2021-06-01T00:01:00Z", "5.5", "110"],
        ["R80711", "2021-06-01T00:02:00Z", "6.0", ""],  # power missing: not complete
        ["R80721", "2021-06-01T00:00:30Z", "4.0", "90"],
        ["R80721", "2021-06-01T03:00:00Z", "4.5", "95"],  # past the range's end
    ]
    mapping = ImportConfig(
        delimiter=";",
        time_column="t",
        turbine_column="id",
        columns={"ws": "wind_speed", "p": "power"},
    )
    run(write_csv(tmp_path / "raw.csv", ["id", "t", "ws", "p"], rows), empty, mapping)
    params = {"start": "2021-06-01", "end": "2021-06-01T03:00Z", "last": "true"}
    body = httpx.get(f"{api}/data", params=params | {"variables": "wind_speed,power"}).json()
    keys = ("turbine", "timestamp", "wind_speed", "power")  # statistics, if held: null here
    assert [{k: r[k] for k in keys} for r in body] == [
        {
            "turbine": "R80711",
            "timestamp": "2021-06-01T00:01:00Z",
            "wind_speed": 5.5,
            "power": 110.0,
        },
        {
            "turbine": "R80721",
            "timestamp": "2021-06-01T00:00:30Z",
            "wind_speed": 4.0,
            "power": 90.0,
        },
    ]
    only_wind = httpx.get(
        f"{api}/data", params=params | {"variables": "wind_speed", "turbines": "R80711"}
    )
    assert [r["timestamp"] for r in only_wind.json()] == ["2021-06-01T00:02:00Z"]
    with ApiClient(api) as client:
        frame = client.fetch_last(
            datetime(2021, 6, 1), datetime(2021, 6, 1, 3), ["wind_speed", "power"], FARM
        )
        full = client.fetch_frame(
            datetime(2021, 6, 1), datetime(2021, 6, 1, 3), ["wind_speed", "power"], FARM
        )
        assert frame.schema == full.schema and frame.height == 2
        assert frame["power"].to_list() == [110.0, 90.0]
        assert client.fetch_last(datetime(2021, 5, 1), datetime(2021, 5, 2), ["power"]).height == 0
    refused = httpx.get(f"{api}/data", params=params | {"last": "maybe"})
    assert refused.status_code == 422 and "last" in refused.text


# -- refusals: one line naming the key and what is accepted; nothing imported -------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"columns": {"Ws_avg": "wind_speed:mean", "Ws_x": "wind_speed:avg"}},
            "Ws_x = 'wind_speed:avg': unknown statistic 'avg'; accepted: mean, min, max, std, "
            "count",
        ),
        (
            {"period": "7min", "columns": {}},
            "period '7min' is not a duration from 1min to 1d that divides a day",
        ),
        ({"period": "ten minutes"}, "period 'ten minutes' is not a duration"),
        ({"period": "10min", "label": "middle"}, "Input should be 'start' or 'end'"),
        (
            {"columns": {"Ws_avg": "wind_speed:mean", "Ws_min": "wind_speed:min"}},
            "Ws_min = 'wind_speed:min': a statistic of a period needs the period: give period",
        ),
        ({"label": "end"}, "label = 'end' describes the periods of an export"),
        ({"samples_per_period": 600}, "samples_per_period = 600 describes the periods"),
        (
            {"period": "10min", "columns": {"A": "wind_speed:mean", "B": "wind_speed:mean"}},
            "columns A and B both map to wind_speed:mean",
        ),
        (
            {"period": "10min", "columns": {"A": "wind_speed", "B": "wind_speed:mean"}},
            "columns A and B both map to wind_speed:mean",
        ),
        (
            {"period": "10min", "columns": {"Ws_max": "wind_speed:max"}},
            "Ws_max = 'wind_speed:max': a signal's period statistics need its mean too",
        ),
    ],
)
def test_bad_mappings_are_refused_naming_the_key(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ImportConfig(time_column="t", **options)
    assert message in str(caught.value)


def test_bad_mappings_in_the_file_name_their_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "windpipe.toml"
    monkeypatch.setenv("WINDPIPE_CONFIG", str(config))
    cases = {
        'columns = { Ws_avg = "speed:mean" }': "imports.hb.columns.Ws_avg: 'speed' is not a "
        "configured signal; accepted: wind_speed, power, ambient_temperature",
        'period = "10min"\ncolumns = { Ws_avg = "wind_speed:mean", Ws_q = "wind_speed:median" }': (
            "imports.hb.columns: Ws_q = 'wind_speed:median': unknown statistic 'median'"
        ),
        'period = "7min"': "imports.hb.period: period '7min' is not a duration from 1min to 1d "
        "that divides a day",
        'period = "10min"\nlabel = "centre"': (
            "imports.hb.label: 'centre': Input should be 'start' or 'end'"
        ),
    }
    for body, message in cases.items():
        config.write_text(f"[imports.hb]\n{body}\n")
        with pytest.raises(ValueError) as caught:
            load_settings(_env_file=None)
        assert message in str(caught.value), body
        assert len(str(caught.value).splitlines()) == 1
    config.write_text(
        '[imports.hb]\nperiod = "10min"\nlabel = "end"\nsamples_per_period = 60\n'
        'columns = { Ws_avg = "wind_speed:mean", Ws_min = "wind_speed:min" }\n'
    )
    mapping = load_settings(_env_file=None).imports["hb"]
    assert (mapping.period_length, mapping.period_samples) == (timedelta(minutes=10), 60)


def test_bad_files_import_nothing(empty: Engine, tmp_path: Path, export: Path) -> None:
    def nothing_held() -> bool:
        with empty.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM data")).scalar_one() == 0

    # a time off the period's boundaries
    rows = [
        ["R80711", "2021-06-01T00:10:00Z", "5", "1"],
        ["R80711", "2021-06-01T00:25:00Z", "5", "1"],
    ]
    header = ["Wind_turbine_name", "Date_time", "Ws_avg", "Ws_std"]
    mapping = HAUTE_BORNE.model_copy(
        update={"columns": {"Ws_avg": "wind_speed:mean", "Ws_std": "wind_speed:std"}}
    )
    with pytest.raises(ImportFileError) as caught:
        run(write_csv(tmp_path / "off.csv", header, rows), empty, mapping)
    assert "line 3, column 'Date_time': time not on a 10min boundary '2021-06-01T00:25:00Z'" in str(
        caught.value
    )
    assert nothing_held()
    # a negative standard deviation, a count that is no count
    rows = [["R80711", "2021-06-01T00:10:00Z", "5", "-1"]]
    with pytest.raises(
        ImportFileError, match="line 2, column 'Ws_std': negative standard deviation"
    ):
        run(write_csv(tmp_path / "neg.csv", header, rows), empty, mapping)
    counted = mapping.model_copy(
        update={"columns": {"Ws_avg": "wind_speed:mean", "Ws_std": "wind_speed:count"}}
    )
    with pytest.raises(
        ImportFileError, match=r"column 'Ws_std': count not a whole number >= 0 '2\.5'"
    ):
        run(
            write_csv(tmp_path / "n.csv", header, [["R80711", "2021-06-01T00:10:00Z", "5", "2.5"]]),
            empty,
            counted,
        )
    # a signal not configured, given straight to the importer
    with pytest.raises(
        ImportFileError, match="column Ws_avg maps to 'gust:mean', whose signal is not configured"
    ):
        run(export, empty, HAUTE_BORNE.model_copy(update={"columns": {"Ws_avg": "gust:mean"}}))
    # a signal whose column is too long for its statistics' names (PostgreSQL keeps 63)
    long = "w" * 57
    with pytest.raises(ImportFileError) as caught:
        import_file(
            export, HAUTE_BORNE, signals={**SIGNALS, "wind_speed": long}, fleet=FARM, engine=empty
        )
    assert f"signals.wind_speed: '{long}' is too long to store its period statistics" in str(
        caught.value
    )
    assert "at most 56 characters" in str(caught.value)
    assert nothing_held()


def test_a_dry_run_reads_statistics_and_adds_no_column(source_url: URL, export: Path) -> None:
    with new_database(source_url, "windpipe_import_statistics_dry") as source:
        ensure_source_schema(source)
        report = run(export, None)
        assert report.rows == 2 * HOURS * 6 and report.first == START
        assert report.nulls == {t: 0 for t in HAUTE_BORNE.columns.values()}
        assert not any("__" in c for c in columns_of(source))


# -- the ETL's roll-up of imported statistics equals the raw samples' statistics ---------------


def raw_statistics(values: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Statistics of consecutive blocks of ``size`` 1 Hz samples, NaN (missing) left out."""
    blocks = values.reshape(-1, size)
    return {
        "mean": np.nanmean(blocks, axis=1),
        "min": np.nanmin(blocks, axis=1),
        "max": np.nanmax(blocks, axis=1),
        "std": np.nanstd(blocks, axis=1, ddof=1),
        "count": np.sum(~np.isnan(blocks), axis=1).astype(float),
    }


def gappy_export(
    raw: dict[str, dict[str, np.ndarray]], path: Path, begin: datetime
) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """The samples with ~8 % missing in runs, as an export with a count column per signal (so
    the periods weigh differently), starting at ``begin``; and the samples it was made from."""
    rng = np.random.default_rng(7)
    gappy: dict[str, dict[str, np.ndarray]] = {}
    for turbine, signals in raw.items():
        gone = np.repeat(rng.random(HOURS * 360) < 0.08, 10)  # runs of 10 s
        gappy[turbine] = {s: np.where(gone, np.nan, v) for s, v in signals.items()}
    header = ["Wind_turbine_name", "Date_time"]
    header += [f"{p}_{s}" for p in ("Ws", "P") for s in ("avg", "min", "max", "std", "n")]
    stats = {
        t: {s: raw_statistics(v, PERIOD) for s, v in signals.items()}
        for t, signals in gappy.items()
    }
    rows = []
    for k in range(HOURS * 6):
        end = (begin + timedelta(minutes=10 * (k + 1))).astimezone(PARIS).isoformat()
        for turbine in FARM:
            row = [turbine, end]
            for signal in ("wind_speed", "power"):
                row += [repr(float(stats[turbine][signal][s][k])) for s in STATS]
            rows.append(row)
    return write_csv(path, header, rows), gappy


def test_the_hourly_rollup_of_an_export_equals_the_raw_samples_statistics(
    empty: Engine,
    export: Path,
    api: str,
    raw: dict[str, dict[str, np.ndarray]],
    target_url: URL,
    tmp_path: Path,
) -> None:
    from windpipe.etl.pipeline import run_range
    from windpipe.warehouse.store import ensure_schema as ensure_target_schema

    run(export, empty)  # hours 0-4: complete 1 Hz samples, no count column (600 stands in)
    later = START + timedelta(hours=HOURS)  # hours 4-8: gaps, a count column
    path, gappy = gappy_export(raw, tmp_path / "counted.csv", later)
    columns = {
        f"{prefix}_{suffix}": f"{signal}:{stat}"
        for prefix, signal in (("Ws", "wind_speed"), ("P", "power"))
        for suffix, stat in zip(("avg", "min", "max", "std", "n"), STATS, strict=True)
    }
    run(path, empty, HAUTE_BORNE.model_copy(update={"columns": columns}))

    with (
        new_database(target_url, "windpipe_import_statistics_target") as target,
        ApiClient(api) as client,
    ):
        ensure_target_schema(target)
        run_range(
            START.date(),
            START.date(),
            client=client,
            engine=target,
            variables=["wind_speed", "power"],
            aggregations=list(STATS),
            turbines=FARM,
            window=timedelta(hours=1),
        )
        with target.connect() as conn:
            written = {
                (turbine, name, moment): value
                for turbine, name, moment, value in conn.execute(
                    text(
                        "SELECT s.turbine, s.name, d.timestamp AT TIME ZONE 'UTC', d.value "
                        "FROM data d JOIN signal s ON s.id = d.signal_id"
                    )
                )
            }
    expected = {}
    for turbine in FARM:
        for signal in ("wind_speed", "power"):
            for part, values in ((0, raw[turbine][signal]), (HOURS, gappy[turbine][signal])):
                hourly = raw_statistics(values, 3600)
                for hour in range(HOURS):
                    moment = (START + timedelta(hours=part + hour)).replace(tzinfo=None)
                    for stat in STATS:
                        expected[(turbine, f"{signal}_{stat}", moment)] = hourly[stat][hour]
    assert written.keys() == expected.keys()
    for key, value in expected.items():
        assert math.isclose(written[key], value, rel_tol=1e-9), (key, written[key], value)
    # the gaps made the periods weigh differently: the count is the samples present
    assert written[("R80711", "wind_speed_count", START.replace(tzinfo=None))] == 3600
    assert min(v for (_, n, _), v in written.items() if n.endswith("_count")) < 3500
