"""``python -m windpipe`` runs the CLI."""

from windpipe.cli import main

main()
