"""The Typer application and the error handling every command shares."""

import re
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

from windpipe import __version__
from windpipe.errors import WindpipeError

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="windpipe",
    help="Wind-turbine SCADA ETL: source DB -> API -> 10-minute aggregates -> target DB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class LazyConsole:
    """A Rich console made on first use: importing Rich costs ~45 ms that ``--version`` skips."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def get(self) -> "Console":
        """The console itself (for Rich APIs that take one, such as ``Progress``)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


console = LazyConsole(soft_wrap=True)  # never wrap URLs or paths
err_console = LazyConsole(stderr=True, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        print(f"windpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Wind-turbine SCADA ETL: source DB -> API -> 10-minute aggregates -> target DB."""


P = ParamSpec("P")
R = TypeVar("R")


class UserError(WindpipeError):
    """A command-line mistake the user can fix; printed as one line, exit code 1 (or given)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, exit_code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    from rich.markup import escape  # messages quote TOML tables: [[turbines]] is not markup

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(exit_code)


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr: worth knowing, not a failure."""
    from rich.markup import escape

    err_console.print(
        f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True
    )


def clean_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can cause into one clear line instead of a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except WindpipeError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            from windpipe.postgres import database_error_line

            line = database_error_line(exc)
            if line is None:
                raise
            raise fail(line) from None

    return wrapper


def parse_day(value: str | None, option: str) -> date | None:
    """A ``YYYY-MM-DD`` option as a date, or a UserError naming the option."""
    if value is None:
        return None
    # date.fromisoformat also takes 20260101 and 2026-W01-4; the help promises YYYY-MM-DD only.
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise UserError(f"{option} {value!r} is not a date; expected YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise UserError(f"{option} {value!r} is not a valid date ({exc})") from None


def load_settings_or_exit():  # type: ignore[no-untyped-def]
    """The settings, or a one-line error naming the bad variable."""
    from windpipe.errors import ConfigError
    from windpipe.settings import get_settings

    try:
        return get_settings()
    except ConfigError as exc:
        raise fail(str(exc), exc.exit_code) from None
