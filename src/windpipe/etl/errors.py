"""The ETL's errors: each one a single line a user can act on (the CLI prints it as it stands)."""


class EtlError(Exception):
    """An ETL failure the user can understand and fix; the message is one line."""


class ApiUnavailableError(EtlError):
    """The API could not be reached, or kept answering 5xx, after the client's retries."""


class ApiRequestError(EtlError):
    """The API rejected the request (4xx); the message carries the API's own ``detail``."""


class IncompleteResponseError(EtlError):
    """A response ended early: a cut transfer, or an Arrow stream without its end-of-stream."""


class TargetUnavailableError(EtlError):
    """The target database refused the connection or dropped it while a day was being loaded."""
