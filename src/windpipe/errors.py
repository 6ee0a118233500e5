"""Every error a user can cause or fix, under one root: ``WindpipeError``.

The CLI's safety net catches the root and prints its message as one line; the API turns the
request errors into 4xx answers. This module imports nothing of windpipe, so any module may use it.
"""


class WindpipeError(Exception):
    """An error whose message is meant for the user as it stands: one line, what and why."""

    #: The process exit code when the CLI stops on this error.
    exit_code: int = 1


class ConfigError(WindpipeError, ValueError):
    """A setting is invalid; the message names the ``WINDPIPE_*`` variable and what is accepted."""

    exit_code = 2


class DatabaseUnavailableError(WindpipeError):
    """A database cannot be reached; the message says which one and why."""


class SeedInputError(WindpipeError, ValueError):
    """A seeding parameter is out of range; the message says what is accepted."""


class QueryError(WindpipeError, ValueError):
    """A request parameter is invalid; the message names the value and what is accepted."""


class SourceUnavailableError(WindpipeError):
    """The source database did not answer the API."""


class SourceSchemaError(WindpipeError):
    """The source table's schema breaks windpipe's contract (a column missing or of another type);
    the message names each column, the type found and expected, and the statement that fixes it."""


class SourceQueryError(WindpipeError):
    """The source database answered a query with an error that is not a connection failure (a
    column or table missing, a type or permission changed): an operator must fix it."""


class ApiBusyError(WindpipeError):
    """The API has no database connection (or request slot) to spare; retry after a moment."""


class EtlError(WindpipeError):
    """An ETL failure the user can understand and fix."""


class ApiUnavailableError(EtlError):
    """The API could not be reached, or kept answering 5xx, after the client's retries."""


class ApiRequestError(EtlError):
    """The API rejected the request (4xx); the message carries the API's own ``detail``."""


class IncompleteResponseError(EtlError):
    """A response ended early: a cut transfer, or an Arrow stream without its end-of-stream."""


class TargetUnavailableError(EtlError):
    """The target database refused the connection or dropped it: while a day was being loaded, or
    while the API read it (a 503 naming the target, not the source)."""


class SchemaBehindError(WindpipeError):
    """A database's schema is older than this windpipe; the message names the command to run."""


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message (drivers add hints on later lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
