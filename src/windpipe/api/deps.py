"""Dependencies shared by the routes, as ``Annotated`` aliases."""

from typing import Annotated

from fastapi import Depends, Request

from windpipe.api.pool import ReadOnlyPool
from windpipe.settings import Settings


def get_reader(request: Request) -> ReadOnlyPool:
    """The app's read-only pool of the source."""
    reader: ReadOnlyPool = request.app.state.reader
    return reader


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


ReaderDep = Annotated[ReadOnlyPool, Depends(get_reader)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
