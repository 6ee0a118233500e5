"""Content negotiation: what an ``Accept`` header asks for."""

import pytest

from windpipe.api.formats import DataFormat, negotiate


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, DataFormat.json),
        ("*/*", DataFormat.json),
        ("text/html", DataFormat.json),
        ("text/csv", DataFormat.csv),
        ("application/vnd.apache.arrow.stream", DataFormat.arrow),
        ("Application/Vnd.Apache.Arrow.Stream", DataFormat.arrow),
        ("text/csv;q=0.1, application/json", DataFormat.json),
        ("application/json;q=0.5, text/csv;q=0.9", DataFormat.csv),
        ("text/csv, application/vnd.apache.arrow.stream", DataFormat.csv),  # tie: first named
        ("text/csv;q=0", DataFormat.json),  # q=0 means "not this"
        ("text/csv;q=oops, application/vnd.apache.arrow.stream;q=0.2", DataFormat.arrow),
    ],
)
def test_the_preferred_format_wins(accept: str | None, expected: DataFormat) -> None:
    assert negotiate(accept) is expected
