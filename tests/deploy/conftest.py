import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "compose: builds the image and runs compose.yaml against a Docker engine "
        "(skipped when none answers; `make test-compose` runs only these)",
    )
