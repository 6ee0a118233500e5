"""The exception types that mean "the user can fix this", and the one line shown for an error."""


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message (drivers add hints on later lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


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
