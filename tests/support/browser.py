"""A real headless Chromium (Debian's package), driven over the Chrome DevTools Protocol.

No browser is ever downloaded: the tests use /usr/bin/chromium. Under CI a missing browser is a
failure; elsewhere browser tests skip with a clear message.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.support.server import free_port

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# No network but loopback: names resolve to nothing (except the loopback address) and anything that is
# not loopback goes to a proxy that does not exist. A closed government network, as far as a page can tell.
OFFLINE = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",  # loopback bypasses a proxy implicitly
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def chromium_path() -> str:
    """Return the chromium executable, or skip (fail under CI) when it is not installed."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Debian's chromium is not installed (make test installs it with apt-get when it can)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(message)
    return path


class Browser:
    """One headless Chromium with one page; methods wait for what they start."""

    def __init__(self, extra_flags: tuple[str, ...] = ()) -> None:
        self._profile = tempfile.mkdtemp(prefix="chromium-")
        port = free_port()
        self._proc = subprocess.Popen(
            [
                chromium_path(),
                *FLAGS,
                f"--remote-debugging-port={port}",
                f"--user-data-dir={self._profile}",
                "--window-size=1280,900",
                *extra_flags,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        targets: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=1) as r:
                    targets = [t for t in json.load(r) if t.get("type") == "page"]
                if targets:
                    break
            except OSError:
                time.sleep(0.1)
        if not targets:
            self.close()
            raise RuntimeError("chromium did not start")
        self._stack = contextlib.ExitStack()
        self._ws: ClientConnection = self._stack.enter_context(
            connect(targets[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, proxy=None)
        )
        self._ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Network.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one CDP command and return its result (events in between are dropped)."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=30))
            if message.get("id") == msg_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def goto(self, url: str) -> None:
        """Navigate and wait until the document has loaded."""
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def evaluate(self, expression: str) -> Any:
        """Return the value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(f"!!({expression})"):
                    return
            except RuntimeError:  # the page is between two documents (its context went away): ask again
                pass
            time.sleep(0.05)
        raise TimeoutError(f"page never satisfied: {expression}")

    def fill(self, selector: str, value: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    def click(self, selector: str) -> None:
        """Click an element that navigates (a link, a form button); return once the new document has loaded."""
        self.evaluate("window.__lvvOldDocument = true")  # a new document has no such mark
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        self.wait_for("window.__lvvOldDocument === undefined && document.readyState === 'complete'")

    def text(self) -> str:
        return str(self.evaluate("document.body.innerText"))

    def screenshot(self, name: str) -> Path:
        """Save a full-page PNG under test-artifacts/ and return its path."""
        ARTIFACTS.mkdir(exist_ok=True)
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path = ARTIFACTS / f"{name}.png"
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self._ws.close()
        except Exception:
            pass
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        shutil.rmtree(self._profile, ignore_errors=True)
