import pytest

#: Timings of the compose test (seconds by step), printed in pytest's summary.
FIGURES = pytest.StashKey[dict[str, float]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "compose: builds the image and runs compose.yaml against a Docker engine "
        "(skipped when none answers; `make test-compose` runs only these)",
    )


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    figures = config.stash.get(FIGURES, None)
    if figures:
        terminalreporter.section("compose test timings")
        for step, seconds in figures.items():
            terminalreporter.write_line(f"{step}: {seconds:.0f} s")
