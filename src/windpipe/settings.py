"""The one configuration model for every windpipe process.

Values come, highest priority first, from: keyword arguments, ``WINDPIPE_*`` environment variables,
a ``.env`` file, the optional TOML file (``WINDPIPE_CONFIG`` or ``./windpipe.toml``: the fleet,
its signals, the ETL's window and aggregations, and any single setting by its name), defaults.
"""

import os
import re
import tomllib
import zoneinfo
from collections.abc import Sequence
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from windpipe import catalog
from windpipe.catalog import (
    PERIOD_STATISTICS,
)
from windpipe.errors import ConfigError

Host = Annotated[str, Field(min_length=1)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


#: The units a pressure signal may declare, and their factor to Pa.
PRESSURE_UNITS: dict[str, float] = {"Pa": 1.0, "hPa": 100.0, "mbar": 100.0, "kPa": 1000.0}

CONFIG_ENV = "WINDPIPE_CONFIG"
DEFAULT_CONFIG_FILE = Path("windpipe.toml")
_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"


class TurbineConfig(catalog.Turbine):
    """``[[turbines]]`` in the configuration file: one turbine of the fleet (``catalog.Turbine``,
    no other key accepted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalConfig(BaseModel):
    """``[signals.<variable>]`` in the configuration file: a numeric column of the source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str | None = Field(default=None, pattern=_IDENTIFIER)
    unit: str = ""
    description: str = ""
    range: tuple[float, float] | None = None
    aggregate: bool = False
    #: What the samples mean (README, "Signal kinds"): linear, angle, counter or state.
    kind: str = "linear"
    #: This signal's aggregations; None: ``[etl] aggregations`` as its kind has them.
    aggregations: list[str] | None = None
    #: Its IEC 61400-25 name in exports for OpenOA (``windpipe export openoa``), e.g.
    #: ``WROT_BlPthAngVal``; None: ``catalog.DEFAULT_IEC_NAMES`` for a signal named there.
    iec_name: str | None = None

    @field_validator("iec_name")
    @classmethod
    def _iec_shaped(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(catalog.IEC_NAME, value):
            raise ValueError(
                f"iec_name {value!r} is not an IEC 61400-25 name; accepted: a logical node, _ "
                "and a data name, letters and digits, e.g. WMET_HorWdSpd, WROT_BlPthAngVal"
            )
        return value

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError(f"range {list(value)} must be [low, high] with low < high")
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in catalog.DECLARED_KINDS:
            raise ValueError(
                f"unknown kind {value!r}{did_you_mean(value, catalog.DECLARED_KINDS)}; "
                f"accepted: {', '.join(catalog.DECLARED_KINDS)}"
            )
        return value

    @model_validator(mode="after")
    def _aggregations_of_kind(self) -> "SignalConfig":
        if self.aggregations is None:
            return self
        own = catalog.KIND_AGGREGATIONS[catalog.SignalKind(self.kind)]
        if not self.aggregations:
            raise ValueError(
                f"aggregations is empty; accepted for kind {self.kind}: {', '.join(own)}"
            )
        wrong = [a for a in self.aggregations if a not in own]
        if wrong:
            why = (
                " (an angle has no min or max: 350 and 10 degrees are 20 apart, not 340)"
                if self.kind == "angle" and set(wrong) & {"min", "max"}
                else ""
            )
            raise ValueError(
                f"aggregation(s) {', '.join(wrong)} are not defined for kind {self.kind}{why}; "
                f"accepted for kind {self.kind}: {', '.join(own)}"
            )
        self.__dict__["aggregations"] = list(dict.fromkeys(self.aggregations))
        return self

    def signal_kind(self) -> catalog.SignalKind:
        """The kind the ETL computes: an angle whose range is [-180, 180] is a signed one."""
        if self.kind == "angle" and self.range is not None and self.range[0] < 0:
            return catalog.SignalKind.SIGNED_ANGLE
        return catalog.SignalKind(self.kind)


def split_mapped(target: str) -> tuple[str, str | None]:
    """A mapping's target, ``signal`` (raw samples) or ``signal:stat``, as (signal, stat)."""
    signal, sep, stat = target.partition(":")
    return signal.strip(), stat.strip() if sep else None


class ImportConfig(BaseModel):
    """``[imports.<name>]`` in the configuration file: how to read one kind of SCADA export.

    ``columns`` maps the file's column names to configured signals (empty: the file's columns
    named like a signal); every other column of the file is ignored. A target ``signal:stat``
    (mean, min, max, std, count) reads the column as that statistic of each ``period`` (a
    10-minute export), whose times label the period's ``start`` or ``end``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["csv", "parquet"] | None = None
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    time_column: str = Field(default="timestamp", min_length=1)
    time_format: str = Field(default="auto", min_length=1)
    timezone: str | None = None
    ambiguous: Literal["error", "earliest", "latest", "infer"] = "error"
    turbine_column: str | None = Field(default=None, min_length=1)
    turbine: str | None = Field(default=None, pattern=f"^{catalog.TURBINE_ID}$")
    # period, label and samples_per_period come before columns: columns' check reads them.
    period: str | None = None
    label: Literal["start", "end"] = "start"
    samples_per_period: int | None = Field(default=None, ge=1, le=86_400_000)
    columns: dict[str, str] = Field(default_factory=dict)

    @field_validator("period")
    @classmethod
    def _known_period(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            catalog.parse_window(value)
        except ValueError as exc:
            raise ValueError(str(exc).replace("window", "period", 1)) from None
        return value

    @field_validator("label", "samples_per_period")
    @classmethod
    def _needs_period(cls, value: Any, info: ValidationInfo) -> Any:
        if value not in (None, "start") and info.data.get("period") is None:
            raise ValueError(
                f"{info.field_name} = {value!r} describes the periods of an export of period "
                "statistics: give period too (e.g. --period 10min)"
            )
        return value

    @field_validator("columns")
    @classmethod
    def _known_statistics(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        seen: dict[tuple[str, str], str] = {}
        means = {s for s, stat in map(split_mapped, value.values()) if stat == "mean"}
        period = info.data.get("period")
        for column, target in value.items():
            signal, stat = split_mapped(target)
            where = f"{column} = {target!r}"
            if stat is not None and stat not in PERIOD_STATISTICS:
                raise ValueError(
                    f"{where}: unknown statistic {stat!r}; accepted: "
                    + ", ".join(PERIOD_STATISTICS)
                )
            if stat not in (None, "mean") and period is None:
                raise ValueError(
                    f"{where}: a statistic of a period needs the period: give period "
                    '(e.g. --period 10min, or period = "10min")'
                )
            if stat not in (None, "mean") and signal not in means:
                raise ValueError(
                    f"{where}: a signal's period statistics need its mean too: map the column "
                    f"of the period means to '{signal}:mean'"
                )
            key = (signal, stat or "mean")
            if key in seen:
                raise ValueError(
                    f"columns {seen[key]} and {column} both map to {signal}:{key[1]}; "
                    "accepted: one column per signal and statistic"
                )
            seen[key] = column
        return value

    @property
    def period_length(self) -> timedelta | None:
        """The period of the export's statistics (None: the rows are raw samples)."""
        return None if self.period is None else catalog.parse_window(self.period)

    @property
    def period_samples(self) -> int | None:
        """Samples each period stands for when no count column says: ``samples_per_period``,
        by default the period in seconds (1 Hz sampling)."""
        length = self.period_length
        if length is None:
            return None
        return self.samples_per_period or int(length.total_seconds())

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone; expected e.g. UTC, Europe/Paris"
            ) from None
        return value

    @field_validator("time_format")
    @classmethod
    def _known_time_format(cls, value: str) -> str:
        if value not in ("auto", "iso", "epoch", "epoch_ms") and "%" not in value:
            raise ValueError(
                f"{value!r} is not a time format; accepted: auto, iso, epoch (seconds), "
                "epoch_ms, or a strftime pattern such as %d/%m/%Y %H:%M"
            )
        return value

    @model_validator(mode="after")
    def _one_turbine_source(self) -> "ImportConfig":
        if self.turbine is not None and self.turbine_column is not None:
            raise ValueError("give turbine_column (a column of turbine ids) or turbine, not both")
        return self


class EventCodeConfig(BaseModel):
    """``"<code>" = { category = …, description = … }`` in ``[event_codes]``: what an event code
    means, as one of the IEC 61400-26-1 categories (``catalog.EVENT_CATEGORIES``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str
    description: str = ""

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        return catalog.check_event_category(value)


#: The codes of the events the synthetic farm writes (``windpipe.source.generator``), its SCADA
#: log: the default ``[event_codes]``, so its availability works out of the box. A status 3 is a
#: grid operator's setpoint below rated while the turbine still produces: IEC 61400-26-1's partial
#: performance (derated), not a requested shutdown.
SYNTHETIC_EVENT_CODES = {
    "101": EventCodeConfig(category="forced_outage", description="Forced stop (fault)"),
    "201": EventCodeConfig(
        category="scheduled_maintenance", description="Scheduled maintenance (service visit)"
    ),
    "301": EventCodeConfig(category="partial_performance", description="Grid curtailment"),
    "401": EventCodeConfig(
        category="out_of_environmental_specification", description="Stopped for high wind"
    ),
}


def _default_event_codes() -> dict[str, EventCodeConfig]:
    return dict(SYNTHETIC_EVENT_CODES)


class AvailabilityConfig(BaseModel):
    """``[availability]`` in the configuration file: which IEC 61400-26-1 categories count as
    operative, non-operative or neither (a contract's view); every category exactly once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operative: list[str] = Field(
        default_factory=lambda: list(catalog.DEFAULT_AVAILABILITY["operative"])
    )
    non_operative: list[str] = Field(
        default_factory=lambda: list(catalog.DEFAULT_AVAILABILITY["non_operative"])
    )
    excluded: list[str] = Field(
        default_factory=lambda: list(catalog.DEFAULT_AVAILABILITY["excluded"])
    )
    #: The days before a day computed with it (Dagster's ``kpis_daily``): the measured reference
    #: curve is fitted over them and the day, so a day's figures do not depend on the range run.
    reference_days: int = Field(default=30, ge=0, le=366)

    @model_validator(mode="after")
    def _each_category_once(self) -> "AvailabilityConfig":
        catalog.check_classification(self.lists())
        return self

    def lists(self) -> dict[str, list[str]]:
        """Class -> its categories."""
        return {
            "operative": self.operative,
            "non_operative": self.non_operative,
            "excluded": self.excluded,
        }

    @property
    def classes(self) -> dict[str, str]:
        """Category -> its class (operative, non_operative, excluded)."""
        return catalog.check_classification(self.lists())


def _default_signals() -> dict[str, SignalConfig]:
    return {
        v.name: SignalConfig(
            unit=v.unit, description=v.description, range=(v.low, v.high), aggregate=v.aggregate
        )
        for v in catalog.VARIABLES.values()
    }


def did_you_mean(word: str, accepted: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean x?)`` for a misspelt key, or nothing when no accepted key is close."""
    import difflib  # 2 ms of import, paid only by a misspelt configuration

    close = difflib.get_close_matches(word, accepted, n=3, cutoff=0.6)
    if not close:
        return ""
    listed = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f" (did you mean {listed}?)"


def config_path() -> Path:
    """The configuration file in effect: ``$WINDPIPE_CONFIG``, or ``./windpipe.toml``."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE).expanduser()


class TomlFileSource(PydanticBaseSettingsSource):
    """The optional TOML file, flattened to the settings' field names (``[etl] window`` ->
    ``etl_window``), with unknown keys refused by name."""

    _SECTIONS = {
        "etl": (
            "variables",
            "aggregations",
            "window",
            "close_margin_minutes",
            "min_coverage",
            "sampling_interval",
        ),
        "power_curve": (
            "min_coverage",
            "reference_density",
            "temperature_signal",
            "pressure_signal",
            "humidity_signal",
        ),
        "flags": ("flatline_windows", "icing_reference_days"),
    }
    _TABLES = ("turbines", "signals", "imports", "event_codes", "availability")

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path = config_path()
        self.values: dict[str, Any] = {}
        explicit = bool(os.environ.get(CONFIG_ENV))
        if not self.path.is_file():
            if explicit:
                raise ConfigError(f"{CONFIG_ENV}={self.path}: no such file")
            return
        try:
            document = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.path}: cannot be read ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{self.path}: not valid TOML ({exc})") from None
        fields = set(settings_cls.model_fields) - set(self._TABLES) - {"config"}
        for key, value in document.items():
            if key in self._SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"{self.path}: [{key}] must be a table")
                for sub, item in value.items():
                    if sub not in self._SECTIONS[key]:
                        raise ConfigError(
                            f"{self.path}: unknown key {key}.{sub}"
                            f"{did_you_mean(sub, self._SECTIONS[key])}; accepted in [{key}]: "
                            + ", ".join(self._SECTIONS[key])
                        )
                    self.values[f"{key}_{sub}"] = item
            elif key in self._TABLES or key in fields:
                self.values[key] = value
            else:
                accepted = sorted({*self._SECTIONS, *self._TABLES, *fields})
                raise ConfigError(
                    f"{self.path}: unknown key {key}{did_you_mean(key, accepted)}; "
                    f"accepted: {', '.join(accepted)}"
                )

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: ``__call__`` hands over the whole file at once."""
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


class Settings(BaseSettings):
    """Settings for the source, the API, the ETL and Dagster; every field is ``WINDPIPE_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="WINDPIPE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    config: Path | None = Field(
        default=None,
        description="The configuration file in effect (WINDPIPE_CONFIG, else ./windpipe.toml).",
    )
    source_db_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the source DB; unset = embedded PostgreSQL."
    )
    target_db_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the target DB; unset = embedded PostgreSQL."
    )
    data_dir: Path = Field(
        default=Path(".windpipe"), description="Embedded PostgreSQL data and Dagster home."
    )
    api_host: Host = Field(default="127.0.0.1", description="Interface the API listens on.")
    api_port: Port = Field(default=8000, description="Port the API listens on.")
    api_url: str | None = Field(
        default=None, description="Base URL clients use to reach the API; default from host/port."
    )
    api_max_range_days: Annotated[int, Field(ge=1, le=36600)] = Field(
        default=366, description="Longest time range one /data request may ask for, in days."
    )
    api_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60.0, description="Read timeout of the ETL's API client."
    )
    etl_variables: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Source variables the ETL aggregates; default: the signals marked aggregate.",
    )
    etl_aggregations: Annotated[list[str], NoDecode] = Field(
        default=list(catalog.DEFAULT_ETL_AGGREGATIONS),
        description="Aggregations per window.",
    )
    etl_window: str = Field(
        default="10min", description="Aggregation window: 1min to 1d, dividing a day."
    )
    etl_min_coverage: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0,
        description="A window holding fewer samples than this share of the expected count "
        "(window / sampling interval) is not written; 0 writes every window with a sample.",
    )
    etl_sampling_interval: str | None = Field(
        default=None,
        description="The source's sampling interval (e.g. 1s, 1min), for min_coverage; unset: "
        "inferred per turbine and day from the samples.",
    )
    etl_close_margin_minutes: Annotated[int, Field(ge=0, le=1440)] = Field(
        default=2,
        description="A window is written once it ended this long ago (the live edge's window "
        "still filling is left for a later run).",
    )
    changes_lookback_days: Annotated[int, Field(ge=1, le=3660)] = Field(
        default=30,
        description="Days back (today included) the change sensor compares the source's "
        "fingerprints with what was loaded.",
    )
    changes_interval_seconds: Annotated[int, Field(ge=10, le=86_400)] = Field(
        default=120, description="Seconds between two passes of the change sensor."
    )
    turbines: list[TurbineConfig] = Field(
        default_factory=lambda: [TurbineConfig(id=catalog.DEFAULT_TURBINE_ID, synthetic=True)],
        description="The fleet ([[turbines]] in the configuration file); unset: the turbines "
        "the source holds (a synthetic WTG01 in an empty source).",
    )
    signals: dict[str, SignalConfig] = Field(
        default_factory=_default_signals,
        description="The source's numeric columns ([signals.<variable>] in the file).",
    )
    imports: dict[str, ImportConfig] = Field(
        default_factory=dict, description="Named import mappings ([imports.<name>])."
    )
    event_codes: dict[str, EventCodeConfig] = Field(
        default_factory=_default_event_codes,
        description="What each event code means, as an IEC 61400-26-1 category ([event_codes]); "
        "unset: the synthetic farm's codes 101, 201, 301, 401.",
    )
    availability: AvailabilityConfig = Field(
        default_factory=AvailabilityConfig,
        description="Which IEC 61400-26-1 categories count as operative, non-operative or "
        "neither ([availability]); default: the standard's.",
    )
    freshness_lag_minutes: Annotated[int, Field(ge=1, le=10_080)] = Field(
        default=30,
        description="Oldest the latest window of a turbine may be before the check warns.",
    )
    dagster_max_concurrent_runs: Annotated[int, Field(ge=1, le=64)] = Field(
        default=2, description="Dagster runs at once (the laptop instance's run queue)."
    )
    dagster_etl_runs: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1, description="ETL runs at once, reading the source and writing the target."
    )
    # -- Dagster's concurrency pool of the steps that use the databases (orchestration/defs).
    dagster_pool_limit: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1,
        description="Runs at once whose steps read the source (through the API) or write the "
        "target, however launched (schedules, sensors, backfills from the UI): Dagster's pool "
        "`windpipe_databases`.",
    )
    dagster_host: Host = Field(default="127.0.0.1", description="Dagster webserver interface.")
    dagster_port: Port = Field(default=3000, description="Dagster webserver port.")
    partitions_start: date | None = Field(
        default=None,
        description="First day of Dagster's daily partitions; default: the first day of data.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the services."
    )

    # -- The connector API under load and attack: bounded resources, least privilege,
    # authentication. Defaults suit one machine: keys off, loopback names only, a small pool.
    api_source_db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL the API reads with; default: the source DB as the read-only "
        "role (embedded, or with WINDPIPE_API_DB_PASSWORD set), else the source DB URL itself.",
    )
    api_db_role: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = Field(
        default="windpipe_reader",
        description="Read-only PostgreSQL role the API reads as; `windpipe db init` creates it.",
    )
    api_db_password: SecretStr | None = Field(
        default=None, description="Password of the read-only role (needed on a configured server)."
    )
    api_pool_size: Annotated[int, Field(ge=1, le=200)] = Field(
        default=8, description="Most source-DB connections the API holds (data and coverage)."
    )
    api_pool_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = Field(
        default=5.0, description="How long a request waits for a connection before a 503."
    )
    api_max_concurrency: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=64, description="Requests in progress at once; more are answered 503 at once."
    )
    api_statement_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30.0, description="statement_timeout of each query the API runs."
    )
    api_key: SecretStr | None = Field(
        default=None, description="The key the ETL and Dagster send to the API (Bearer)."
    )
    api_key_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Keys the API accepts, as [label=]<sha256 hex> (`windpipe api-key create`); "
        "empty: no authentication.",
    )
    api_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host header values the API answers; default: the loopback names and "
        "WINDPIPE_API_HOST; * allows any.",
    )
    dagster_read_only: bool = Field(
        default=False, description="Start the Dagster webserver with --read-only."
    )

    @field_validator("api_source_db_url")
    @classmethod
    def _valid_api_source_url(cls, value: str | None) -> str | None:
        return cls._valid_sqlalchemy_url(value)

    @field_validator("api_key_hashes", mode="before")
    @classmethod
    def _valid_key_hashes(cls, value: object) -> object:
        value = _split_csv(value)
        if not isinstance(value, list):
            return value
        for number, entry in enumerate(value, start=1):
            digest = str(entry).rpartition("=")[2].lower()
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                # The entry is not echoed: it may be a key pasted by mistake.
                raise ValueError(
                    f"entry {number} is not [label=]<64 hex digits>; put the hash that "
                    "`windpipe api-key create` prints here, never the key itself"
                )
        return value

    @field_validator("api_allowed_hosts", mode="before")
    @classmethod
    def _valid_hosts(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list):
            for host in value:
                if not re.fullmatch(r"\*|(\*\.)?[A-Za-z0-9_.\-]+|\[?[0-9A-Fa-f:.]+\]?", str(host)):
                    raise ValueError(
                        f"{str(host)[:40]!r} is not a host name or address; expected e.g. "
                        "localhost,api.example.org,*.example.org,10.0.0.5 or *"
                    )
        return value

    @property
    def allowed_hosts(self) -> list[str]:
        """The Host names the API answers: the configured ones, else loopback and its own host."""
        if self.api_allowed_hosts:
            return list(self.api_allowed_hosts)
        hosts = ["localhost", "127.0.0.1", "::1"]
        if self.api_host not in ("0.0.0.0", "::", *hosts):
            hosts.append(self.api_host)
        return hosts

    # -- end of the API's load and security settings

    # -- API worker processes: one by default; more only where cores are free for them.
    api_workers: int = Field(
        default=1,
        description="uvicorn worker processes of `windpipe api` (1..32); each has its own pool.",
    )

    @field_validator("api_workers")
    @classmethod
    def _valid_workers(cls, value: int) -> int:
        if not 1 <= value <= 32:
            raise ValueError(
                f"{value} worker processes is outside 1..32; use about one per free core "
                "(each worker holds its own WINDPIPE_API_POOL_SIZE connections)"
            )
        return value

    # -- end of the API workers block

    # -- The dashboard: the API reads the target too, as the read-only role.
    api_target_db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL the API reads the target with (/aggregates, /ui); default: "
        "the target DB as the read-only role (embedded, or with WINDPIPE_API_DB_PASSWORD set), "
        "else the target DB URL itself.",
    )

    @field_validator("api_target_db_url")
    @classmethod
    def _valid_api_target_url(cls, value: str | None) -> str | None:
        return cls._valid_sqlalchemy_url(value)

    # -- end of the dashboard block

    # -- Power curves (IEC 61400-12-1) and quality flags: [power_curve] and [flags] in the file.
    power_curve_min_coverage: Annotated[float, Field(ge=0, le=1)] = Field(
        default=1.0,
        description="A window enters a power curve only when it holds at least this share of its "
        "expected samples (1: a complete window).",
    )
    power_curve_reference_density: Annotated[float, Field(gt=0.5, le=2.0)] = Field(
        default=1.225,
        description="Density (kg/m3) wind speeds are normalised to: V_n = V (rho/rho_ref)^(1/3).",
    )
    power_curve_temperature_signal: str = Field(
        default="ambient_temperature",
        description="The signal of the ambient temperature (degC) of the air density.",
    )
    power_curve_pressure_signal: str | None = Field(
        default=None,
        description="A signal of the air pressure (unit Pa, hPa, mbar or kPa); unset: the standard "
        "atmosphere at the turbine's elevation_m, else 101325 Pa.",
    )
    power_curve_humidity_signal: str | None = Field(
        default=None,
        description="A signal of the relative humidity (%); set: the IEC humid-air density.",
    )
    flags_flatline_windows: Annotated[int, Field(ge=2, le=10_000)] = Field(
        default=3,
        description="A signal's window mean unchanged over this many consecutive windows is "
        "flagged flatline.",
    )
    flags_icing_reference_days: Annotated[int, Field(ge=1, le=3660)] = Field(
        default=365,
        description="The icing flag's reference bins (windows above +3 degC) come from this many "
        "days before the days flagged, and those days.",
    )

    @model_validator(mode="after")
    def _power_curve_signals(self) -> "Settings":
        chosen = {
            "power_curve_pressure_signal": self.power_curve_pressure_signal,
            "power_curve_humidity_signal": self.power_curve_humidity_signal,
        }
        if "power_curve_temperature_signal" in self.model_fields_set:
            chosen["power_curve_temperature_signal"] = self.power_curve_temperature_signal
        for field, name in chosen.items():
            if name is not None and name not in self.signals:
                raise ValueError(
                    f"{_where((field,))}: {name!r} is not a configured signal; accepted: "
                    + ", ".join(self.signals)
                )
        if self.power_curve_pressure_signal is not None:
            unit = self.signals[self.power_curve_pressure_signal].unit
            if unit not in PRESSURE_UNITS:
                raise ValueError(
                    f"{_where(('power_curve_pressure_signal',))}: the unit of signal "
                    f"{self.power_curve_pressure_signal!r} is {unit!r}; accepted: "
                    + ", ".join(PRESSURE_UNITS)
                    + " (declare it with [signals.<name>] unit = ...)"
                )
        return self

    @property
    def pressure_to_pa(self) -> float:
        """The factor from the pressure signal's unit to Pa (1 without a pressure signal)."""
        if self.power_curve_pressure_signal is None:
            return 1.0
        return PRESSURE_UNITS[self.signals[self.power_curve_pressure_signal].unit]

    # -- end of the power-curve and flags block

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("source_db_url", "target_db_url")
    @classmethod
    def _valid_sqlalchemy_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            url = make_url(value)
        except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
            raise ValueError(
                f"{_hide_password(value)!r} is not a SQLAlchemy URL; expected e.g. "
                "postgresql+psycopg://user:password@host:5432/dbname"
            ) from exc
        if url.drivername not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError(
                f"driver {url.drivername!r} is not supported; windpipe talks to PostgreSQL "
                "through psycopg 3: use postgresql+psycopg:// (or postgresql://)"
            )
        return value

    @field_validator("api_url")
    @classmethod
    def _valid_http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        example = "expected e.g. http://127.0.0.1:8000"
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
            raise ValueError(f"{value!r} is not an http(s) URL; {example}")
        try:
            parts = urlsplit(value)
            port = parts.port  # raises for a port that is not a number or over 65535
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid URL ({exc}); {example}") from None
        if not parts.hostname or port == 0:
            raise ValueError(f"{value!r} has no host or a port of 0; {example}")
        return value.rstrip("/")

    @field_validator("etl_variables", mode="before")
    @classmethod
    def _variables_list(cls, value: object) -> object:
        if isinstance(value, str) and not _split_csv(value):
            raise ValueError(
                "no variable given; accepted: names of the configured signals "
                "(leave it unset for those marked aggregate)"
            )
        return _split_csv(value)

    @field_validator("etl_aggregations", mode="before")
    @classmethod
    def _valid_aggregations(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list):
            return catalog.check_names(value, list(catalog.AGGREGATIONS), "aggregation")
        return value

    @field_validator("etl_window")
    @classmethod
    def _valid_window(cls, value: str) -> str:
        catalog.parse_window(value)
        return value.strip()

    @field_validator("etl_sampling_interval")
    @classmethod
    def _valid_interval(cls, value: str | None) -> str | None:
        if value is None:
            return None
        catalog.parse_duration(value)
        return value.strip()

    @field_validator("turbines")
    @classmethod
    def _unique_turbines(cls, value: list[TurbineConfig]) -> list[TurbineConfig]:
        if not value:
            raise ValueError("the fleet is empty; declare at least one [[turbines]] with an id")
        ids = [t.id for t in value]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"duplicate turbine id {', '.join(twice)}; each id must be unique")
        return value

    @field_validator("signals")
    @classmethod
    def _valid_signals(cls, value: dict[str, SignalConfig]) -> dict[str, SignalConfig]:
        bad = [name for name in value if not re.fullmatch(_IDENTIFIER, name)]
        if bad:
            raise ValueError(f"signal name(s) {bad} are not lower-case identifiers (a-z, 0-9, _)")
        if not value:
            raise ValueError("no signals declared")
        named: dict[str, list[str]] = {}
        for name, signal in value.items():
            iec = signal.iec_name or catalog.DEFAULT_IEC_NAMES.get(name)
            if iec is not None:
                named.setdefault(iec, []).append(name)
        twice = {iec: names for iec, names in named.items() if len(names) > 1}
        if twice:
            iec, names = next(iter(twice.items()))
            raise ValueError(
                f"signals {', '.join(names)} share the iec_name {iec}; each signal needs its own"
            )
        return value

    @model_validator(mode="after")
    def _resolve(self) -> "Settings":
        if self.config is None and config_path().is_file():
            self.config = config_path().resolve()
        if self.api_url is None:
            host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
            self.api_url = f"http://{host}:{self.api_port}"
        if not self.etl_variables:
            self.etl_variables = [n for n, s in self.signals.items() if s.aggregate]
        try:
            self.etl_variables = catalog.check_names(
                self.etl_variables, list(self.signals), "variable"
            )
        except ValueError as exc:  # a model-level error has no field: name it here
            raise ValueError(f"{_where(('etl_variables',))}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _valid_imports(self) -> "Settings":
        for name, mapping in self.imports.items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
                raise ValueError(
                    f"{_where(('imports',))}.{name[:40]}: not a mapping name; accepted: "
                    "letters, digits, _ . -"
                )
            for column, target in mapping.columns.items():
                signal = split_mapped(target)[0]
                if signal not in self.signals:
                    raise ValueError(
                        f"{_where(('imports', name, 'columns', column))}: {signal!r} is not a "
                        f"configured signal; accepted: {', '.join(self.signals)}"
                    )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment, ``.env``, the TOML file, the defaults."""
        return (init_settings, env_settings, dotenv_settings, TomlFileSource(settings_cls))

    @property
    def variables(self) -> dict[str, catalog.Variable]:
        """The source variables in effect: the catalog's, as the configuration declares them."""
        result = {}
        for name, signal in self.signals.items():
            low, high = signal.range or (float("-inf"), float("inf"))
            result[name] = catalog.Variable(
                name,
                signal.unit,
                signal.description,
                low=low,
                high=high,
                column=signal.column or name,
                aggregate=signal.aggregate,
            )
        return result

    @property
    def iec_names(self) -> dict[str, str]:
        """Each signal's IEC 61400-25 name for OpenOA: its ``iec_name``, else the catalog's default
        for its name (``catalog.DEFAULT_IEC_NAMES``); signals with neither are left out."""
        result = {}
        for name, signal in self.signals.items():
            iec = signal.iec_name or catalog.DEFAULT_IEC_NAMES.get(name)
            if iec is not None:
                result[name] = iec
        return result

    @property
    def event_categories(self) -> dict[str, str]:
        """Each event code's IEC 61400-26-1 category (``[event_codes]``)."""
        return {code: entry.category for code, entry in self.event_codes.items()}

    @property
    def fleet(self) -> list[catalog.Turbine]:
        """The turbines of the configuration, in its order."""
        return list(self.turbines)

    @property
    def turbines_declared(self) -> bool:
        """Whether the configuration declares the fleet (``[[turbines]]``, WINDPIPE_TURBINES)."""
        return "turbines" in self.model_fields_set

    def fleet_of(self, held: Sequence[str]) -> list[catalog.Turbine]:
        """The fleet given the turbines the source holds: the declared one, or when none is
        declared, every turbine of the source (the default WTG01 when the source is empty)."""
        if self.turbines_declared or not held:
            return self.fleet
        # As the source holds them, unchecked: the API and the ETL judge each id where it is used.
        return [catalog.Turbine.model_construct(id=t) for t in held]

    @property
    def close_margin(self) -> timedelta:
        """How long ago a window must have ended to be written."""
        return timedelta(minutes=self.etl_close_margin_minutes)

    @property
    def window(self) -> timedelta:
        """The aggregation window."""
        return catalog.parse_window(self.etl_window)

    @property
    def rollup(self) -> catalog.Rollup:
        """What the ETL computes: each aggregated variable's kind and aggregations."""
        chosen = {n: self.signals[n] for n in self.etl_variables}
        return catalog.Rollup(
            {
                name: tuple(
                    signal.aggregations
                    or catalog.default_aggregations(signal.signal_kind(), self.etl_aggregations)
                )
                for name, signal in chosen.items()
            },
            {name: signal.signal_kind() for name, signal in chosen.items()},
            min_coverage=self.etl_min_coverage,
            sampling_interval=(
                catalog.parse_duration(self.etl_sampling_interval)
                if self.etl_sampling_interval
                else None
            ),
        )

    @property
    def etl_signals(self) -> list[str]:
        """The target signals the ETL writes, ``<variable>_<aggregation>``."""
        return self.rollup.signals

    @property
    def base_api_url(self) -> str:
        """The API URL in effect (always set after validation)."""
        assert self.api_url is not None
        return self.api_url


_FILE_ONLY = ("turbines", "signals", "imports", "event_codes", "availability")
_ACCEPTED = {
    "availability": list(AvailabilityConfig.model_fields),
    "event_codes": list(EventCodeConfig.model_fields),
    "turbines": list(TurbineConfig.model_fields),
    "signals": list(SignalConfig.model_fields),
    "imports": list(ImportConfig.model_fields),
}


def _file_key(field: str) -> str | None:
    """The configuration file's key that set ``field``, when the file set it and no variable did."""
    if os.environ.get(f"WINDPIPE_{field.upper()}") is not None:
        return None
    try:
        document = tomllib.loads(config_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    section, _, sub = field.partition("_")
    for known in TomlFileSource._SECTIONS:  # sections with an underscore: power_curve
        if field.startswith(f"{known}_"):
            section, sub = known, field.removeprefix(f"{known}_")
    if field in document:
        return field
    if sub and isinstance(document.get(section), dict) and sub in document[section]:
        return f"{section}.{sub}"
    return None


def _where(loc: tuple[int | str, ...]) -> str:
    """Where a bad value was: its variable, or its key in the configuration file."""
    field = str(loc[0]) if loc else "settings"
    if field in _FILE_ONLY:
        key = field + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
        return f"{config_path()}: {key}"
    in_file = _file_key(field)
    return f"{config_path()}: {in_file}" if in_file else f"WINDPIPE_{field.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from every source, turning validation errors into one clear line each."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                accepted = _ACCEPTED.get(str(err["loc"][0]), [])
                key = str(err["loc"][-1])
                message = (
                    f"unknown key{did_you_mean(key, accepted)}; accepted: {', '.join(accepted)}"
                )
            elif err["type"] not in ("value_error", "missing") and isinstance(err["input"], str):
                message = f"{err['input']!r}: {message}"  # pydantic's own messages omit the value
            if str(err["type"]).startswith(("date", "datetime")):
                message += "; expected YYYY-MM-DD"
            lines.append(f"{_where(tuple(err['loc']))}: {message}" if err["loc"] else message)
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
