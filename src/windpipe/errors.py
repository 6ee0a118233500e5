"""The exception types that mean "the user can fix this", gathered for the CLI and the API."""


def user_error_types() -> tuple[type[Exception], ...]:
    """Exception classes whose message is meant for the user as it stands."""
    from windpipe.postgres import DatabaseUnavailableError
    from windpipe.settings import ConfigError
    from windpipe.source.seed import SeedInputError

    types: list[type[Exception]] = [ConfigError, DatabaseUnavailableError, SeedInputError]
    try:
        from windpipe.etl.errors import EtlError

        types.append(EtlError)
    except ImportError:  # the ETL package is optional for the source-only commands
        pass
    return tuple(types)
