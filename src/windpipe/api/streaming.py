"""A streamed answer: Arrow pages in, the format asked for out, the connection given back however
the stream ends (completed, failed, or the client gone)."""

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Any

import pyarrow as pa
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from windpipe.api.formats import MEDIA_TYPES, DataFormat, Encoder
from windpipe.api.pool import Lease

#: Pages smaller than this are encoded on the event loop (a thread hop costs more).
INLINE_ROWS = 4_096


class LeasedStream(StreamingResponse):
    """A streamed answer that gives its database connection back however it ends."""

    def __init__(self, content: AsyncIterator[bytes], lease: Lease, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.lease.release()  # also when the client left before the first byte


def record_schema(names: list[str]) -> pa.Schema:
    """One record per turbine and moment: ``turbine``, ``timestamp`` (UTC), a float per name."""
    return pa.schema(
        [
            pa.field("turbine", pa.string(), nullable=False),
            pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        ]
        + [pa.field(n, pa.float64()) for n in names]
    )


def stream_pages(
    pages: AsyncGenerator[pa.Table, None],
    lease: Lease,
    *,
    chosen: DataFormat,
    schema: pa.Schema,
    name: str,
    start: datetime,
    end: datetime,
) -> LeasedStream:
    """Stream ``pages`` (tables in ``schema``) encoded as ``chosen``, named after the range."""
    encoder = Encoder(chosen, schema)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield encoder.head()
            async for page in pages:
                if page.num_rows <= INLINE_ROWS:
                    yield encoder.page(page)
                else:
                    yield await run_in_threadpool(encoder.page, page)
            yield encoder.tail()
        finally:
            try:
                await pages.aclose()  # a page read ahead stops with it
            finally:
                lease.release()

    filename = f"{name}_{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}.{chosen.value}"
    headers = {"Content-Disposition": f'inline; filename="{filename}"'}
    return LeasedStream(body(), lease, media_type=MEDIA_TYPES[chosen], headers=headers)
