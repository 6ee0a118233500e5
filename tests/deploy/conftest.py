import pytest

#: Timings of the compose tests: seconds by step, by stack (printed in pytest's summary).
FIGURES = pytest.StashKey[dict[str, dict[str, float]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "compose: builds the image and runs compose.yaml against a Docker engine "
        "(skipped when none answers; `make test-compose` runs only these)",
    )


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    for stack, figures in config.stash.get(FIGURES, {}).items():
        if figures:
            terminalreporter.section(f"compose test timings: {stack}")
            for step, seconds in figures.items():
                terminalreporter.write_line(f"{step}: {seconds:.0f} s")
