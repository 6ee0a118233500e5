"""A real headless Chromium driven over the DevTools protocol: pages, requests, screenshots.

Used by the dashboard's browser tests and by bench/ui.py. Debian's ``chromium`` is installed by
``.ci/run`` (as root) when absent; ``find_chromium()`` is None elsewhere and the tests skip.
"""

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.sync.client import ClientConnection, connect


def find_chromium() -> str | None:
    """The Chromium binary on PATH, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    """One tab: navigate, wait for the dashboard's ``data-ready``, evaluate, screenshot."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        #: Every URL the page asked for (documents, scripts, fetches, images), in order.
        self.requests: list[str] = []
        #: Console errors, uncaught exceptions and security (CSP) messages.
        self.problems: list[str] = []

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            self.problems.append(json.dumps(params["exceptionDetails"])[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.problems.append(json.dumps(params.get("args"))[:500])
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.problems.append(params["entry"].get("text", "")[:500])

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        """Run one DevTools command and return its result (events seen meanwhile are kept)."""
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (JSON-serialisable)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(json.dumps(result["exceptionDetails"])[:1000])
        return result["result"].get("value")

    def open(self, url: str, *, timeout: float = 60) -> float:
        """Load ``url`` and wait until the dashboard says it is drawn; return the seconds taken."""
        started = time.monotonic()
        self.send("Page.navigate", {"url": url})
        while time.monotonic() - started < timeout:
            if self.evaluate("document.body ? document.body.dataset.ready || '' : ''") == "1":
                return time.monotonic() - started
            time.sleep(0.05)
        raise TimeoutError(f"{url} was not drawn within {timeout} s; problems: {self.problems}")

    def charts(self) -> dict[str, dict[str, Any]]:
        """Every Plotly chart of the page: traces, points per trace, SVG/GL traces, draw time."""
        return self.evaluate(
            """(() => {
              const out = {};
              for (const div of document.querySelectorAll('.js-plotly-plot')) {
                out[div.id] = {
                  traces: div.data.length,
                  types: div.data.map(t => t.type),
                  points: div.data.map(t => t.z ? t.z.length * t.z[0].length : (t.x || t.r).length),
                  drawn: div.querySelectorAll('g.trace, g.hm, image, canvas').length,
                  draw_ms: Number(div.dataset.drawMs),
                };
              }
              return out;
            })()"""
        )

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page."""
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        shot = self.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            },
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def foreign_requests(self) -> list[str]:
        """Requests to anything but 127.0.0.1 (``data:``/``blob:`` URLs stay in the page)."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob", "about")
            and urlsplit(url).hostname != "127.0.0.1"
        ]


@contextmanager
def chromium(binary: str, *, width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A headless Chromium that can reach 127.0.0.1 only, and one tab in it."""
    profile = tempfile.mkdtemp(prefix="windpipe-chromium-")
    try:
        process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                # No network but loopback: a page that needed a CDN would stay blank.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helpers (crashpad, zygote) in its own group
        )
        try:
            port_file = Path(profile, "DevToolsActivePort")
            deadline = time.monotonic() + 30
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("Chromium did not open its DevTools port")
                time.sleep(0.05)
            port = int(port_file.read_text().splitlines()[0])
            target = httpx.put(f"http://127.0.0.1:{port}/json/new?about:blank").json()
            with connect(target["webSocketDebuggerUrl"], max_size=None) as socket:
                page = Page(socket)
                for domain in ("Network", "Page", "Runtime", "Log"):
                    page.send(f"{domain}.enable")
                page.send(
                    "Emulation.setDeviceMetricsOverride",
                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                )
                yield page
        finally:
            _stop_group(process)
    finally:
        # A helper may still be flushing into the profile as it exits: retry, then let it be.
        for _ in range(20):
            shutil.rmtree(profile, ignore_errors=True)
            if not Path(profile).exists():
                break
            time.sleep(0.1)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop Chromium and every process of its group (TERM, then KILL after 10 s)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
