"""The one configuration model for every windpipe process, read from ``WINDPIPE_*`` variables."""

import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from windpipe import catalog
from windpipe.errors import ConfigError

Host = Annotated[str, Field(min_length=1)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Settings for the source, the API, the ETL and Dagster; every field is ``WINDPIPE_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="WINDPIPE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
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
        default=list(catalog.DEFAULT_ETL_VARIABLES),
        description="Source variables the ETL aggregates.",
    )
    etl_aggregations: Annotated[list[str], NoDecode] = Field(
        default=list(catalog.DEFAULT_ETL_AGGREGATIONS),
        description="Aggregations per 10-minute window.",
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

    @field_validator("etl_variables", "etl_aggregations", mode="before")
    @classmethod
    def _valid_names(cls, value: object, info: ValidationInfo) -> object:
        accepted, what = (
            (list(catalog.VARIABLES), "variable")
            if info.field_name == "etl_variables"
            else (list(catalog.AGGREGATIONS), "aggregation")
        )
        value = _split_csv(value)
        if isinstance(value, list):
            return catalog.check_names(value, accepted, what)
        return value

    @model_validator(mode="after")
    def _default_api_url(self) -> "Settings":
        if self.api_url is None:
            host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
            self.api_url = f"http://{host}:{self.api_port}"
        return self

    @property
    def signals(self) -> list[str]:
        """The target signals the ETL writes, ``<variable>_<aggregation>``."""
        return catalog.signal_names(self.etl_variables, self.etl_aggregations)

    @property
    def base_api_url(self) -> str:
        """The API URL in effect (always set after validation)."""
        assert self.api_url is not None
        return self.api_url


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one clear line each."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] not in ("value_error", "missing") and isinstance(err["input"], str):
                message = f"{err['input']!r}: {message}"  # pydantic's own messages omit the value
            if str(err["type"]).startswith(("date", "datetime")):
                message += "; expected YYYY-MM-DD"
            lines.append(f"WINDPIPE_{field.upper()}: {message}")
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
