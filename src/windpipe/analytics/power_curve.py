"""Power curves by the method of IEC 61400-12-1:2017, from SCADA 10-minute windows.

Pure: frames in, frames out. :func:`power_curves` is the one entry point (the API's
``/power-curves``, the daily KPIs' reference curve); the steps are public for tests and callers
that hold their own windows:

1. :func:`usable_windows`: full-performance windows (IEC 61400-26-1, ``catalog.window_categories``)
   whose coverage reaches ``min_coverage`` and that carry no quality flag on the curve's signals;
2. :func:`with_density`: air density per window (section 9.1.5, eq. (11)/(12)) and the wind speed
   normalised to the reference density (eq. (14), a pitch-regulated turbine);
3. :func:`binned`: 0.5 m/s bins centred on multiples of 0.5 m/s (section 9.1): windows, mean
   normalised speed, mean and standard deviation of power, mean density;
4. :func:`completeness`: the database rule of section 8.3 (each bin from 1 m/s below cut-in to
   1.5 x the speed at 85 % of rated power holds 30 minutes, 180 hours in all).
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from windpipe.analytics.windows import (
    POWER,
    WIND_SPEED,
    bin_index,
    count_of,
    listed_rows,
    mean_of,
    same_windows,
    turbine_codes,
)
from windpipe.catalog import UNCOVERED_HELD, WINDOW, Turbine, parse_signal

if TYPE_CHECKING:
    from windpipe.settings import Settings

#: Gas constant of dry air, J/(kg K) (IEC 61400-12-1:2017 eq. (11)/(12)).
R_DRY = 287.05
#: Gas constant of water vapour, J/(kg K) (eq. (12)).
R_VAPOUR = 461.5
#: Standard sea-level pressure, Pa (ISO 2533).
SEA_LEVEL_PRESSURE = 101_325.0
KELVIN = 273.15
#: A bin is drawn, and counts for completeness, from this many windows on (30 minutes).
MIN_BIN_WINDOWS = 3
#: The database is complete with at least this many hours of windows in all (section 8.3).
MIN_DATABASE_HOURS = 180.0
#: The cut-in wind speed when the configuration names none and no bin produces (m/s).
DEFAULT_CUT_IN = 3.5
#: The share of rated power whose speed bounds the completeness range (1.5 x that speed).
RATED_SHARE = 0.85


@dataclass(frozen=True)
class CurveConfig:
    """How curves are computed: ``[power_curve]`` and the signals the density is computed from."""

    reference_density: float = 1.225
    min_coverage: float = 1.0
    #: The length of a window (hours of data = windows x window).
    window: timedelta = WINDOW
    #: Variables whose ``_mean`` windows give the temperature (degC), pressure, humidity (%).
    temperature: str | None = "ambient_temperature"
    pressure: str | None = None
    pressure_to_pa: float = 1.0
    humidity: str | None = None
    #: The source's sampling interval: the expected count of a window is window / interval. None:
    #: per turbine, the largest count among the windows given.
    sampling_interval: timedelta | None = None

    @classmethod
    def of(cls, settings: "Settings") -> "CurveConfig":
        """The configuration in effect (``[power_curve]``, ``[etl]``)."""
        temperature = settings.power_curve_temperature_signal
        return cls(
            reference_density=settings.power_curve_reference_density,
            min_coverage=settings.power_curve_min_coverage,
            window=settings.window,
            temperature=temperature if temperature in settings.signals else None,
            pressure=settings.power_curve_pressure_signal,
            pressure_to_pa=settings.pressure_to_pa,
            humidity=settings.power_curve_humidity_signal,
            sampling_interval=settings.rollup.sampling_interval,
        )

    @property
    def density_variables(self) -> list[str]:
        """The variables the density is computed from."""
        return [v for v in (self.temperature, self.pressure, self.humidity) if v]

    @property
    def signals(self) -> list[str]:
        """The target signals a curve reads: means of speed, power and the density's inputs, and
        the sample counts of speed and power (coverage) where the ETL writes them."""
        means = [mean_of(v) for v in (WIND_SPEED, POWER, *self.density_variables)]
        return [*means, count_of(WIND_SPEED), count_of(POWER)]


@dataclass(frozen=True)
class Site:
    """What a curve needs of a turbine: elevation, rated power, cut-in (each may be unknown)."""

    elevation_m: float | None = None
    rated_power_kw: float | None = None
    cut_in_ms: float | None = None

    @classmethod
    def of(cls, turbine: Turbine) -> "Site":
        """The site of a configured turbine (``[[turbines]]``)."""
        return cls(
            elevation_m=getattr(turbine, "elevation_m", None),
            rated_power_kw=turbine.rated_power_kw,
            cut_in_ms=getattr(turbine, "cut_in_ms", None),
        )


def sites_of(fleet: "Iterable[Turbine]", turbines: "Iterable[str]") -> dict[str, Site]:
    """Each of ``turbines``' site: its entry of the fleet (``[[turbines]]``), or nothing known."""
    entries = {t.id: t for t in fleet}
    return {t: Site.of(entries[t]) if t in entries else Site() for t in turbines}


def standard_pressure(elevation_m: float | None) -> float:
    """Air pressure (Pa) of the standard atmosphere at ``elevation_m`` (ISO 2533, troposphere):
    101325 x (1 - 2.25577e-5 x h)^5.25588; 101325 Pa when the elevation is unknown."""
    if elevation_m is None:
        return SEA_LEVEL_PRESSURE
    return SEA_LEVEL_PRESSURE * (1.0 - 2.25577e-5 * elevation_m) ** 5.25588


def vapour_pressure(temperature_k: pl.Expr) -> pl.Expr:
    """Vapour pressure of water (Pa) at ``temperature_k`` as IEC 61400-12-1:2017 eq. (12) takes
    it: P_w = 2.05e-5 x exp(0.0631846 x T)."""
    return 2.05e-5 * (0.0631846 * temperature_k).exp()


def air_density(
    temperature_c: pl.Expr, pressure_pa: pl.Expr, relative_humidity: pl.Expr | None = None
) -> pl.Expr:
    """Air density (kg/m3), IEC 61400-12-1:2017 section 9.1.5.

    Dry air, eq. (11): rho = B / (R0 x T). Humid air, eq. (12), with ``relative_humidity`` phi
    as a fraction (0 to 1): rho = (1 / T) x (B / R0 - phi x P_w x (1 / R0 - 1 / R_w)), with
    R0 = 287.05 J/(kg K), R_w = 461.5 J/(kg K), P_w from :func:`vapour_pressure`; T in kelvin,
    B in Pa."""
    kelvin = temperature_c + KELVIN
    dry = pressure_pa / R_DRY
    if relative_humidity is None:
        return dry / kelvin
    vapour = relative_humidity * vapour_pressure(kelvin) * (1.0 / R_DRY - 1.0 / R_VAPOUR)
    return (dry - vapour) / kelvin


def normalised_wind_speed(
    speed: pl.Expr, density: pl.Expr, reference_density: float = 1.225
) -> pl.Expr:
    """Wind speed normalised to ``reference_density`` for a pitch-regulated turbine,
    IEC 61400-12-1:2017 eq. (14): V_n = V x (rho / rho_ref)^(1/3)."""
    # numpy's cube root: within 1 ulp as the power is, 15x faster than Polars' power
    return speed * np.cbrt(density / reference_density)


def coverage(windows: pl.DataFrame, config: CurveConfig) -> pl.Expr:
    """Each window's share of its expected samples: the smaller of speed's and power's counts
    (``*_count`` aggregates) over the expected count (window / ``sampling_interval``, else the
    turbine's largest count among ``windows``). Without counts, 1: the ETL wrote the window, so
    it passed ``[etl] min_coverage``."""
    counts = [c for c in (count_of(WIND_SPEED), count_of(POWER)) if c in windows.columns]
    if not counts:
        return pl.lit(1.0)
    held = pl.min_horizontal(*[pl.col(c) for c in counts])
    if config.sampling_interval is not None:
        expected: pl.Expr = pl.lit(config.window / config.sampling_interval)
    else:
        expected = pl.max_horizontal(*[pl.col(c).max().over("turbine") for c in counts])
    # a window with no count row (older loads) is taken as complete, as without counts
    return (held / expected).fill_null(1.0)


def _flagged(flags: pl.DataFrame, config: CurveConfig) -> pl.DataFrame:
    """Windows (turbine, timestamp) with a flag that keeps them out of a curve: one on speed,
    power or the density's inputs, or one about the whole window (no signal); a window may be
    listed more than once."""
    concerned = {WIND_SPEED, POWER, *config.density_variables}
    if not flags.height:
        return pl.DataFrame(schema={"turbine": pl.String, "timestamp": pl.Datetime("us")})

    def variable(signal: str | None) -> str | None:
        if signal is None:
            return None
        try:
            return parse_signal(signal)[0]
        except ValueError:
            return signal

    variables = {s: variable(s) for s in flags["signal"].unique().to_list()}
    keep = [s for s, v in variables.items() if v is None or v in concerned]
    # a window flagged twice is listed twice: the look-ups and the anti-join do not mind
    concerning = pl.col("signal").is_null() | pl.col("signal").is_in([k for k in keep if k])
    return flags.filter(concerning).select("turbine", pl.col("timestamp").cast(pl.Datetime("us")))


def usable_windows(
    windows: pl.DataFrame,
    categories: pl.DataFrame,
    flags: pl.DataFrame,
    config: CurveConfig,
) -> pl.DataFrame:
    """The windows a curve is made of: full-performance ones (``categories``: ``turbine``,
    ``timestamp``, ``category`` as ``catalog.window_categories`` gives them), holding speed and
    power, with a coverage of at least ``min_coverage`` and no flag on speed, power or the
    density's inputs nor on the whole window (``flags``: ``turbine``, ``timestamp``, ``flag``,
    ``signal``). Adds ``coverage``."""
    wind, power = mean_of(WIND_SPEED), mean_of(POWER)
    frame = windows.with_columns(coverage(windows, config).alias("coverage"))
    held = (
        pl.col(wind).is_not_null()
        & pl.col(power).is_not_null()
        & (pl.col("coverage") >= config.min_coverage - 1e-9)
    )
    if same_windows(windows, categories):  # categories of these very windows: a row-wise mask
        frame = frame.filter(held & (categories["category"] == UNCOVERED_HELD))
    else:
        full = categories.filter(pl.col("category") == UNCOVERED_HELD).select(
            "turbine", pl.col("timestamp").cast(pl.Datetime("us"))
        )
        frame = frame.filter(held).join(full, on=["turbine", "timestamp"], how="semi")
    flagged = _flagged(flags, config)
    if not flagged.height:
        return frame
    hit = listed_rows(frame, flagged)
    if hit is None:
        return frame.join(flagged, on=["turbine", "timestamp"], how="anti")
    return frame.filter(~hit)


def with_density(
    windows: pl.DataFrame, sites: Mapping[str, Site], config: CurveConfig
) -> pl.DataFrame:
    """``windows`` with ``density`` (kg/m3; null without a temperature), ``wind_speed_normalised``
    (the speed itself where the density is null) and ``bin`` (its bin's centre, m/s).

    The pressure is the pressure signal's mean where declared, else the standard atmosphere at
    the turbine's ``elevation_m``, else 101325 Pa; the humidity signal (%) selects the humid-air
    formula."""

    density, normalised = _density_exprs(windows.columns, sites, config)
    return (
        windows.with_columns(density.alias("density"))
        .with_columns(normalised.alias("wind_speed_normalised"))
        .with_columns((bin_index(pl.col("wind_speed_normalised")) * 0.5).alias("bin"))
    )


def _density_exprs(
    columns: Sequence[str], sites: Mapping[str, Site], config: CurveConfig
) -> tuple[pl.Expr, pl.Expr]:
    """:func:`with_density`'s ``density`` and ``wind_speed_normalised`` (from the column
    ``density``) of windows with ``columns``."""

    def column(variable: str | None) -> pl.Expr | None:
        name = mean_of(variable) if variable else None
        return pl.col(name) if name and name in columns else None

    temperature = column(config.temperature)
    pressure = column(config.pressure)
    humidity = column(config.humidity)
    pressures = {t: standard_pressure(s.elevation_m) for t, s in sites.items()}
    site_pressure = (
        pl.lit(SEA_LEVEL_PRESSURE, pl.Float64)  # no turbine's elevation known: no look-up
        if all(p == SEA_LEVEL_PRESSURE for p in pressures.values())
        else pl.col("turbine").replace_strict(
            pressures, default=SEA_LEVEL_PRESSURE, return_dtype=pl.Float64
        )
    )
    bar = site_pressure if pressure is None else (pressure * config.pressure_to_pa)
    if pressure is not None:
        bar = bar.fill_null(site_pressure)
    if temperature is None:
        density = pl.lit(None, pl.Float64)
    else:
        density = air_density(temperature, bar, None if humidity is None else humidity / 100.0)
    speed = pl.col(mean_of(WIND_SPEED))
    normalised = normalised_wind_speed(
        speed, pl.col("density"), config.reference_density
    ).fill_null(speed)
    return density, normalised


#: The columns of a binned curve.
BIN_SCHEMA = {
    "turbine": pl.String,
    "bin": pl.Float64,
    "windows": pl.UInt32,
    "wind_speed": pl.Float64,
    "power": pl.Float64,
    "power_std": pl.Float64,
    "density": pl.Float64,
    "drawn": pl.Boolean,
}


def binned(windows: pl.DataFrame) -> pl.DataFrame:
    """Per turbine and 0.5 m/s bin of ``wind_speed_normalised`` (``bin``: its centre): the
    windows, their mean normalised speed, the mean and standard deviation (n - 1) of their power,
    their mean density, and whether the bin is drawn (from :data:`MIN_BIN_WINDOWS` on)."""
    codes = _bin_codes(windows)
    if codes is None:  # unnamed turbines or bins off the 0.5 m/s grid: a grouping by both
        return _bins_of(windows.group_by("turbine", "bin").agg(_BIN_AGGREGATIONS))
    code, index, names = codes
    columns = windows.select(
        pl.col("wind_speed_normalised", mean_of(POWER), "density").cast(pl.Float64)
    )
    return _bin_statistics(code, index, names, *columns.get_columns())[0]


#: Per bin: its windows, their mean normalised speed, mean and deviation of power, mean density.
_BIN_AGGREGATIONS = [
    pl.len().cast(pl.UInt32).alias("windows"),
    pl.col("wind_speed_normalised").mean().alias("wind_speed"),
    pl.col(mean_of(POWER)).mean().alias("power"),
    pl.col(mean_of(POWER)).std(ddof=1).alias("power_std"),
    pl.col("density").mean().alias("density"),
]


def _bins_of(grouped: pl.DataFrame) -> pl.DataFrame:
    """Grouped bins as :func:`binned` gives them: drawn or not, its columns, sorted."""
    return (
        grouped.with_columns((pl.col("windows") >= MIN_BIN_WINDOWS).alias("drawn"))
        .select(list(BIN_SCHEMA))
        .cast(BIN_SCHEMA)  # type: ignore[arg-type]
        .sort("turbine", "bin")
    )


def _bin_codes(windows: pl.DataFrame) -> tuple[pl.Series, pl.Series, pl.Series] | None:
    """Each window's turbine code and bin index (``bin`` / 0.5, Int64), and the turbines by code;
    None unless every ``bin`` is a multiple of 0.5 m/s (as :func:`with_density` makes them) and
    every turbine named."""
    if not windows.height or windows["bin"].null_count():
        return None
    codes = turbine_codes(windows["turbine"])
    if codes is None:
        return None
    code, names = codes
    index = windows["bin"] * 2.0
    if not (index.round() == index).all() or not index.abs().max() < 2**52:  # type: ignore[operator]
        return None
    return code, index.cast(pl.Int64), names


def _bin_statistics(
    code: pl.Series,
    index: pl.Series,
    names: pl.Series,
    speed: pl.Series,
    power: pl.Series,
    density: pl.Series,
) -> tuple[pl.DataFrame, np.ndarray]:
    """:func:`binned`'s bins of windows given as their turbine's code, their bin's index, their
    normalised ``speed``, ``power`` and ``density``; and per turbine code, the windows without a
    density. Sums by ``np.add.at`` on one integer per (turbine, bin): in the windows' order, so
    the same windows give the same bits; the deviation from the bin's mean in a second pass."""
    low, high = index.min(), index.max()
    assert isinstance(low, int) and isinstance(high, int)
    width = high - low + 1
    key = np.multiply(code.to_numpy(), width, dtype=np.intp)  # in place from here
    key += index.to_numpy()
    key -= low
    size = names.len() * width
    if size > 4 * key.size + 4096:  # bins far apart (a wild speed): number the ones held
        cells, key = np.unique(key, return_inverse=True)
        size = cells.size
    else:
        cells = np.arange(size)
    windows = np.bincount(key, minlength=size)
    speeds, speed_n = _sums(key, size, speed, windows)
    powers, power_n = _sums(key, size, power, windows)
    densities, density_n = _sums(key, size, density, windows)
    with np.errstate(divide="ignore", invalid="ignore"):  # bins without a value: null below
        mean_power = powers / power_n
        squares = _squares(key, size, power, mean_power)
        held = np.flatnonzero(windows)
        turbine, bin_ = np.divmod(cells[held], width)
        rank = np.empty(names.len(), np.intp)
        rank[names.arg_sort().to_numpy()] = np.arange(names.len())
        held = held[np.lexsort((bin_, rank[turbine]))]  # by turbine's name, then bin
        turbine, bin_ = np.divmod(cells[held], width)
        count = windows[held]
        bins = pl.DataFrame(
            {
                "turbine": names.gather(turbine),
                "bin": (bin_ + low) * 0.5,
                "windows": count,
                "wind_speed": _known(speeds[held] / speed_n[held], speed_n[held] > 0),
                "power": _known(mean_power[held], power_n[held] > 0),
                "power_std": _known(
                    np.sqrt(squares[held] / (power_n[held] - 1)), power_n[held] > 1
                ),
                "density": _known(densities[held] / density_n[held], density_n[held] > 0),
                "drawn": count >= MIN_BIN_WINDOWS,
            },
            schema=BIN_SCHEMA,
        )
    if density_n is windows:  # every window has a density
        return bins, np.zeros(names.len(), np.intp)
    cold = code.filter(density.is_null()).to_numpy()
    return bins, np.bincount(cold, minlength=names.len())


def _known(values: np.ndarray, known: np.ndarray) -> pl.Series:
    """``values`` as a Series, null where not ``known``."""
    series = pl.Series(values)
    return series if known.all() else series.scatter(np.flatnonzero(~known), None)


def _sums(
    key: np.ndarray, size: int, values: pl.Series, windows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per cell of ``key`` (0 to ``size`` - 1): the sum of ``values`` not null, and their count
    (``windows``, the count of keys, when none is null)."""
    x = values.to_numpy()
    if not values.null_count():
        return _added(key, size, x), windows
    known = values.is_not_null().to_numpy()
    return _added(key[known], size, x[known]), np.bincount(key[known], minlength=size)


def _squares(key: np.ndarray, size: int, values: pl.Series, means: np.ndarray) -> np.ndarray:
    """Per cell of ``key``: the sum of the squared deviations of ``values`` not null from the
    cell's mean (``means``)."""
    x = values.to_numpy()
    if values.null_count():
        known = values.is_not_null().to_numpy()
        key, x = key[known], x[known]
    # in Polars: its allocator reuses freed buffers where numpy maps fresh pages (~3x slower)
    deviation = pl.select(pl.Series(x) - pl.Series(means).gather(key)).to_series()
    return _added(key, size, (deviation * deviation).to_numpy())


def _added(key: np.ndarray, size: int, values: np.ndarray) -> np.ndarray:
    """Per cell of ``key`` (0 to ``size`` - 1), the sum of its ``values``, added in their order
    (``np.add.at``: as ``np.bincount`` with weights, bit for bit, and faster)."""
    sums = np.zeros(size)
    np.add.at(sums, key, values)
    return sums


@dataclass(frozen=True)
class Completeness:
    """Whether a turbine's curve meets the database rule of IEC 61400-12-1:2017 section 8.3."""

    complete: bool
    #: Hours of windows in the curve.
    hours: float
    #: The cut-in speed used and where it came from: ``config``, ``curve`` or ``default``.
    cut_in: float
    cut_in_source: str
    #: Rated power used (kW): the configured one, else the highest drawn bin's mean power.
    rated_power: float | None
    #: Normalised speed at 85 % of rated power (linear between drawn bins); None: not reached.
    speed_at_85: float | None
    #: The bins (centres) the rule looks at, from the bin of cut-in - 1 m/s to that of
    #: 1.5 x ``speed_at_85``; and those of them holding fewer than 3 windows.
    low: float
    high: float | None
    missing_bins: list[float] = field(default_factory=list)


def completeness(bins: pl.DataFrame, site: Site, *, window: timedelta = WINDOW) -> Completeness:
    """The database completeness of one turbine's ``bins`` (:func:`binned`): each bin from 1 m/s
    below cut-in to 1.5 x the normalised speed at 85 % of rated power holds at least 3 windows,
    and at least 180 hours in all."""
    lists = [bins[c].to_list() for c in ("bin", "windows", "wind_speed", "power", "drawn")]
    return _completeness(*lists, site=site, window=window)


def _completeness(
    centres: list[float],
    windows: list[int],
    speeds: list[float | None],
    powers: list[float | None],
    drawn: list[bool],
    *,
    site: Site,
    window: timedelta = WINDOW,
) -> Completeness:
    """:func:`completeness` of one turbine's bins given as lists (no frame to filter and sort)."""
    hours = float(sum(windows)) * window.total_seconds() / 3600
    curve = sorted(
        ((b, v, p) for b, v, p, d in zip(centres, speeds, powers, drawn, strict=True) if d),
        key=lambda row: row[0],
    )
    if site.cut_in_ms is not None:
        cut_in, source = float(site.cut_in_ms), "config"
    else:
        producing = [b for b, _, p in curve if p is not None and p > 0]
        cut_in, source = (
            (float(producing[0]), "curve") if producing else (DEFAULT_CUT_IN, "default")
        )
    rated = site.rated_power_kw
    known = [p for _, _, p in curve if p is not None]
    if rated is None and known:
        rated = float(max(known))
    speed_85 = _speed_at(curve, RATED_SHARE * rated) if rated is not None and rated > 0 else None
    low = _centre(cut_in - 1.0)
    if speed_85 is None:
        return Completeness(False, hours, cut_in, source, rated, None, low, None, [])
    high = _centre(1.5 * speed_85)
    counts = dict(zip(centres, windows, strict=True))
    steps = round((high - low) / 0.5)
    missing = [
        low + 0.5 * i for i in range(steps + 1) if counts.get(low + 0.5 * i, 0) < MIN_BIN_WINDOWS
    ]
    complete = not missing and hours >= MIN_DATABASE_HOURS
    return Completeness(complete, hours, cut_in, source, rated, speed_85, low, high, missing)


def _centre(speed: float) -> float:
    """The centre of the bin holding ``speed``."""
    return math.floor(speed / 0.5 + 0.5) * 0.5


def _speed_at(
    curve: Sequence[tuple[float, float | None, float | None]], power: float
) -> float | None:
    """The normalised speed where the drawn bins' mean power first reaches ``power``, linear
    between the bins around it; None when no bin reaches it. ``curve``: (centre, mean speed,
    mean power) of the drawn bins, by centre."""
    speeds = [v for _, v, p in curve if p is not None]
    powers = [p for _, _, p in curve if p is not None]
    for i, (v, p) in enumerate(zip(speeds, powers, strict=True)):
        if p >= power:
            if i == 0 or p == powers[i - 1]:
                return float(v)  # type: ignore[arg-type]
            v0, p0 = speeds[i - 1], powers[i - 1]
            return float(v0 + (power - p0) * (v - v0) / (p - p0))  # type: ignore[operator]
    return None


@dataclass(frozen=True)
class Curves:
    """Power curves of several turbines: their bins and each one's completeness."""

    bins: pl.DataFrame
    completeness: dict[str, Completeness]
    #: Windows per turbine used, and of them those without a temperature (not normalised).
    used: dict[str, int]
    not_normalised: dict[str, int]


def power_curves(
    windows: pl.DataFrame,
    categories: pl.DataFrame,
    flags: pl.DataFrame,
    sites: Mapping[str, Site],
    config: CurveConfig,
) -> Curves:
    """Each turbine's power curve from its windows, IEC 61400-12-1 style.

    ``windows``: one row per (turbine, window): ``turbine``, ``timestamp`` (naive UTC) and the
    target signals of :attr:`CurveConfig.signals` (absent or null ones allowed);
    ``categories``: ``catalog.window_categories`` of those windows; ``flags``: the stored flags
    (``turbine``, ``timestamp``, ``flag``, ``signal``); ``sites``: per turbine, elevation, rated
    power, cut-in. Every turbine of ``sites`` gets an entry, with no bins if it has no windows."""
    for name in (mean_of(WIND_SPEED), mean_of(POWER)):
        if name not in windows.columns:
            windows = windows.with_columns(pl.lit(None, pl.Float64).alias(name))
    windows = windows.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    fused = _curve_bins(windows, categories, flags, sites, config)
    if fused is None:
        used = with_density(usable_windows(windows, categories, flags, config), sites, config)
        bins = binned(used)
        cold = dict(used.filter(pl.col("density").is_null()).group_by("turbine").len().iter_rows())
    else:
        bins, cold = fused
    columns = ("bin", "windows", "wind_speed", "power", "drawn")
    lists = {c: bins[c].to_list() for c in columns}
    rows: dict[str, list[int]] = {t: [] for t in sites}
    for i, turbine in enumerate(bins["turbine"].to_list()):
        if turbine in rows:
            rows[turbine].append(i)
    per_turbine = {t: [[lists[c][i] for i in held] for c in columns] for t, held in rows.items()}
    report = {
        t: _completeness(*facts, site=sites[t], window=config.window)
        for t, facts in per_turbine.items()
    }
    return Curves(
        bins=_with_empty_bins(bins, report, {t: set(facts[0]) for t, facts in per_turbine.items()}),
        completeness=report,
        used={t: int(sum(facts[1])) for t, facts in per_turbine.items()},
        not_normalised={t: int(cold.get(t, 0)) for t in sites},
    )


def _curve_bins(
    windows: pl.DataFrame,
    categories: pl.DataFrame,
    flags: pl.DataFrame,
    sites: Mapping[str, Site],
    config: CurveConfig,
) -> tuple[pl.DataFrame, dict[str, int]] | None:
    """:func:`binned` of :func:`with_density` of :func:`usable_windows`, and the windows per
    turbine without a density, in one pass: the windows are masked once, narrowed to the
    columns the bins read, and summed by one integer per (turbine, bin). None unless
    ``categories`` are of these very windows and the windows' keys fit integers (then the steps
    one by one give the same)."""
    if not windows.height or not same_windows(windows, categories):
        return None
    codes = turbine_codes(windows["turbine"])
    if codes is None:
        return None
    code, names = codes
    flagged = _flagged(flags, config)
    hit = listed_rows(windows, flagged, codes) if flagged.height else None
    if flagged.height and hit is None:
        return None
    wind, power = mean_of(WIND_SPEED), mean_of(POWER)
    usable = (
        pl.col(wind).is_not_null()
        & pl.col(power).is_not_null()
        & (coverage(windows, config) >= config.min_coverage - 1e-9)
        & (categories["category"] == UNCOVERED_HELD)
    )
    if hit is not None:
        usable = usable & ~hit
    density, normalised = _density_exprs(windows.columns, sites, config)
    used = (
        windows.select(wind, pl.col(power).cast(pl.Float64), density.alias("density"), _code=code)
        .filter(windows.select(usable).to_series())
        .select("_code", "density", power, normalised.alias("wind_speed_normalised"))
        .with_columns(bin_index(pl.col("wind_speed_normalised")).alias("_index"))
    )
    if not used.height:
        return _bins_of(pl.DataFrame(schema=BIN_SCHEMA)), {}
    bins, cold = _bin_statistics(
        used["_code"],
        used["_index"],
        names,
        used["wind_speed_normalised"],
        used[power],
        used["density"],
    )
    return bins, {str(names[c]): int(n) for c, n in enumerate(cold) if n}


def _with_empty_bins(
    bins: pl.DataFrame, report: Mapping[str, Completeness], centres: Mapping[str, set[float]]
) -> pl.DataFrame:
    """``bins`` with a row of 0 windows for each bin of a turbine's completeness range that holds
    none (``centres``: per turbine, those of its bins), so a reader sees the gaps."""
    empty = []
    for turbine, facts in report.items():
        if facts.high is None:
            continue
        held = centres[turbine]
        steps = round((facts.high - facts.low) / 0.5)
        empty += [
            {"turbine": turbine, "bin": facts.low + 0.5 * i, "windows": 0, "drawn": False}
            for i in range(steps + 1)
            if facts.low + 0.5 * i not in held
        ]
    if not empty:
        return bins
    extra = pl.DataFrame(empty, schema={k: BIN_SCHEMA[k] for k in empty[0]})
    return pl.concat([bins, extra], how="diagonal").sort("turbine", "bin")
