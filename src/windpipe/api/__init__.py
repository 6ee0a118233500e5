"""The connector API: the only reader of the source database."""

from windpipe.api.app import create_app

__all__ = ["create_app"]
