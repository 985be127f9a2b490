"""A small headless-Chromium driver over the Chrome DevTools protocol (tests only).

It starts Debian's ``chromium`` with a throw-away profile and no network features, opens
a page, collects console errors, uncaught exceptions and log errors (CSP violations and
failed loads land there), evaluates JavaScript and takes screenshots.

Run it directly to refresh the committed screenshot of a report::

    python -m tests.evaluation.chromium REPORT.html docs/report-screenshot.png [EPISODE]
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_NAMES: tuple[str, ...] = ("chromium", "chromium-browser")
STARTUP_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.05
WINDOW_WIDTH = 1400
WINDOW_HEIGHT = 1000
MAX_SCREENSHOT_HEIGHT = 4000
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
    f"--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}",
)


def find_chromium() -> str | None:
    """Path of the chromium binary, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    """Chromium did not start or a DevTools command failed."""


class Page:
    """One headless Chromium with one page, driven over the DevTools websocket."""

    def __init__(self, binary: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="billp-chromium-")
        self._proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._stack = contextlib.ExitStack()
        self._next_id = 0
        self.errors: list[str] = []
        self._events: list[dict[str, Any]] = []
        try:
            self._ws = self._connect()
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
            self.send(
                "Emulation.setDeviceMetricsOverride",
                width=WINDOW_WIDTH,
                height=WINDOW_HEIGHT,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ plumbing
    def _port(self) -> int:
        marker = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrowserError(f"chromium exited at start with status {self._proc.returncode}")
            if marker.is_file():
                text = marker.read_text().split()
                if text:
                    return int(text[0])
            time.sleep(POLL_INTERVAL_S)
        raise BrowserError(f"chromium did not open its DevTools port in {STARTUP_TIMEOUT_S} s")

    def _connect(self) -> ClientConnection:
        port = self._port()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as reply:
                targets = json.loads(reply.read())
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return self._stack.enter_context(
                    connect(
                        pages[0]["webSocketDebuggerUrl"],
                        max_size=MAX_MESSAGE_BYTES,
                        open_timeout=COMMAND_TIMEOUT_S,
                    )
                )
            time.sleep(POLL_INTERVAL_S)
        raise BrowserError("chromium opened no page target")

    def _record(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
            self.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exc = details.get("exception", {})
            self.errors.append(f"exception: {exc.get('description') or details.get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log ({entry.get('source')}): {entry.get('text')}")
        self._events.append(message)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a DevTools command and return its result (events seen meanwhile are kept)."""
        self._next_id += 1
        command_id = self._next_id
        self._ws.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while time.monotonic() < deadline:
            message = json.loads(self._ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("id") == command_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._record(message)
        raise BrowserError(f"{method}: no reply in {COMMAND_TIMEOUT_S} s")

    def wait_for_event(self, method: str) -> dict[str, Any]:
        """Wait for an event (one already received counts)."""
        for message in self._events:
            if message.get("method") == method:
                self._events.remove(message)
                return message
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while time.monotonic() < deadline:
            message = json.loads(self._ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            self._record(message)
            if message.get("method") == method:
                self._events.remove(message)
                return message
        raise BrowserError(f"no {method} event in {COMMAND_TIMEOUT_S} s")

    # ------------------------------------------------------------ actions
    def open(self, path: Path) -> None:
        """Navigate to a local file and wait for its load event."""
        self._events.clear()
        result = self.send("Page.navigate", url=path.resolve().as_uri())
        if result.get("errorText"):
            raise BrowserError(f"could not open {path}: {result['errorText']}")
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page and return its (JSON) value."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(
                f"script failed: {details.get('exception', {}).get('description') or details}"
            )
        return result.get("result", {}).get("value")

    def screenshot(self, path: Path, selector: str | None = None) -> Path:
        """A PNG of the whole page (up to :data:`MAX_SCREENSHOT_HEIGHT` pixels), or of the
        element ``selector`` names."""
        box = self.evaluate(
            "(() => { const e = %s; const r = e.getBoundingClientRect();"
            " return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; })()"
            % (
                f"document.querySelector({json.dumps(selector)})"
                if selector
                else "document.documentElement"
            )
        )
        x, y, width, height = (float(v) for v in box)
        clip = {
            "x": x,
            "y": y,
            "width": max(width, 1.0),
            "height": min(max(height, 1.0), MAX_SCREENSHOT_HEIGHT),
            "scale": 1,
        }
        shot = self.send(
            "Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self._stack.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Page:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


FILTER_SCRIPT = """
(() => {
  const phase = document.getElementById('phase-filter');
  phase.value = 'all';
  phase.dispatchEvent(new Event('change'));
  const input = document.getElementById('episode-filter');
  input.value = %s;
  input.dispatchEvent(new Event('input'));
  const button = document.querySelector('#episode-list button');
  if (button) button.click();
  return {
    listed: [...document.querySelectorAll('#episode-list button')]
      .map((b) => b.getAttribute('data-episode-key')),
    shown: (document.getElementById('episode-title') || {}).textContent || null,
    steps: document.querySelectorAll('#episode-view tr[data-step]').length,
  };
})()
"""


def filter_episodes(page: Page, text: str) -> dict[str, Any]:
    """Type ``text`` into the episode filter, click the first match; what the page shows."""
    return page.evaluate(FILTER_SCRIPT % json.dumps(text))


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    binary = find_chromium()
    if binary is None:
        print("chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        return 1
    report, out = Path(argv[0]), Path(argv[1])
    with Page(binary) as page:
        page.open(report)
        if len(argv) == 3:
            filter_episodes(page, argv[2])
        page.screenshot(out)
        if page.errors:
            print("\n".join(page.errors), file=sys.stderr)
            return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main(sys.argv[1:]))
