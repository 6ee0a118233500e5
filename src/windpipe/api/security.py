"""What stands between the network and the routes: Host check, load shedding, headers, API keys.

One plain ASGI middleware does the first three for every answer (including errors and the docs):

- a ``Host`` header outside the allowed names is refused (400) before any route runs, so a page
  on another site cannot reach the API through DNS rebinding;
- more than ``max_concurrency`` requests at once are answered 503 with ``Retry-After`` at once,
  instead of queueing without end (``/health`` is exempt, so probes see the truth under load);
- every answer carries security headers (no sniffing, no framing, no referrer, a strict CSP).

API keys are a dependency of the data routes. Keys are kept as SHA-256 digests (a key is 256
random bits, so a plain hash is as good as a slow one); a presented key is hashed and compared
with every digest in constant time.
"""

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Routes that answer without a key and outside the concurrency limit.
OPEN_PATHS = frozenset({"/health"})
#: Pages that run Swagger UI / ReDoc: scripts and styles of our own (and their inline bootstrap).
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
KEY_PREFIX = "wp_"

_BASE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; "
    b"form-action 'none'",
)
#: The dashboard (/ui): its own script and plotly.js from the API; plotly.js sets inline styles
#: and draws heatmaps as data: images. No other origin, no inline script.
UI_PREFIX = "/ui"
_UI_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    b"form-action 'self'",
)
_HOST_PORT = re.compile(r"^(\[[^\]]*\]|[^:]*)(?::\d*)?$")


def host_of(header: str) -> str:
    """The host name of a ``Host`` header: its port removed, IPv6 brackets removed."""
    match = _HOST_PORT.match(header.strip())
    host = match.group(1) if match else header
    return host.strip("[]").lower().rstrip(".")


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Whether ``host`` is one of ``allowed`` (``*`` any, ``*.example.org`` any subdomain)."""
    for pattern in allowed:
        pattern = pattern.strip("[]").lower()
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


class GuardMiddleware:
    """Host check, load shedding and security headers for every request (plain ASGI)."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: list[str], max_concurrency: int) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.max_concurrency = max_concurrency
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = _DOCS_CSP if path in DOCS_PATHS else _API_CSP
        if path == UI_PREFIX or path.startswith(UI_PREFIX + "/"):
            csp = _UI_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_BASE_HEADERS, csp]
            await send(message)

        headers = dict(scope.get("headers", []))
        host = host_of(headers.get(b"host", b"").decode("latin-1"))
        if "*" not in self.allowed_hosts and not host_allowed(host, self.allowed_hosts):
            await _answer(
                send_with_headers,
                400,
                "this Host is not served here; the API's names are set by "
                "WINDPIPE_API_ALLOWED_HOSTS",
            )
            return
        if path in OPEN_PATHS:
            await self.app(scope, receive, send_with_headers)
            return
        if self.in_flight >= self.max_concurrency:
            await _answer(
                send_with_headers,
                503,
                f"the API is serving {self.max_concurrency} requests already "
                "(WINDPIPE_API_MAX_CONCURRENCY); retry in a moment",
                retry_after=1,
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.in_flight -= 1


async def _answer(send: Send, status: int, detail: str, *, retry_after: int | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- API keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyEntry:
    """A key the API accepts: an optional label and the SHA-256 digest of the key."""

    label: str
    digest: bytes


def new_key() -> str:
    """A new random API key (256 bits), recognisable by its prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    """The hex SHA-256 digest of ``key``: what the API keeps instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_entries(entries: list[str]) -> list[KeyEntry]:
    """``[label=]<hex digest>`` entries (validated by the settings) as KeyEntry values."""
    parsed = []
    for number, entry in enumerate(entries, start=1):
        label, _, digest = entry.rpartition("=")
        parsed.append(KeyEntry(label or f"key {number}", bytes.fromhex(digest)))
    return parsed


def match_key(presented: str, entries: list[KeyEntry]) -> KeyEntry | None:
    """The entry whose digest is the presented key's; every digest is compared, in constant time."""
    digest = hashlib.sha256(presented.encode()).digest()
    found = None
    for entry in entries:
        if hmac.compare_digest(digest, entry.digest) and found is None:
            found = entry
    return found


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <key>`")


def require_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> None:
    """Let the request through when no keys are configured or it carries an accepted key."""
    entries: list[KeyEntry] = request.app.state.api_keys
    if not entries:
        return
    presented = bearer.credentials if bearer is not None else header
    if not presented:
        raise HTTPException(
            401,
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    entry = match_key(presented, entries)
    if entry is None:
        raise HTTPException(403, "the API key is not accepted")
    request.state.api_key_label = entry.label


KeyDep = Depends(require_key)
