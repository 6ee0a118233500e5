"""``python -m windpipe`` and the ``windpipe`` console script.

``windpipe --version`` answers here, before the command line is built: Typer, Rich and the command
modules cost ~50 ms of start-up (5x a bare interpreter) that printing a version does not need.
Every other command line goes to the Typer app in ``windpipe.cli``.
"""

import sys


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        from windpipe import __version__

        print(f"windpipe {__version__}")  # the same line as the app's own --version
        return
    from windpipe.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
