"""A headless Chromium driven over the DevTools protocol, for page tests.

Debian's chromium is started with `--remote-debugging-pipe`: it reads
NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4, so
no debugging port is opened and the browser can run inside a test namespace
(`ip netns exec`) while the test talks to it from outside. No browser download,
no extra Python package.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.netns import Lab, Netns, stop_process

FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


# Moves our pipe ends to fds 3 and 4, where Chromium expects them, then execs it
# (a shell cannot: dash only redirects single-digit descriptors).
_SHIM = """
import fcntl, os, sys
given = [int(fd) for fd in sys.argv[1:3]]
r, w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in given)  # out of the way of 3 and 4
os.dup2(r, 3)
os.dup2(w, 4)
for fd in {r, w, *given} - {3, 4}:
    os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class CdpError(Exception):
    pass


class Browser:
    """One Chromium process and one page (tab) in it."""

    def __init__(self, lab: Lab, ns: Netns, tmp: Path, width: int = 1280, height: int = 800):
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("chromium is not installed (install.sh --test installs it)")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        self.log_path = tmp / "chromium.log"
        argv = [
            exe,
            *FLAGS,
            f"--user-data-dir={tmp / 'chromium-profile'}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        with self.log_path.open("wb") as log:
            self.proc = lab.spawn(
                ns,
                [sys.executable, "-c", _SHIM, str(to_chrome_r), str(from_chrome_w), *argv],
                pass_fds=(to_chrome_r, from_chrome_w),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.js_errors: list[str] = []  # uncaught exceptions and console.error in the page
        self.auth_challenges: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"}, timeout=60)["targetId"]
        self.session: str = self.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        self.page("Page.enable")
        self.page("Runtime.enable")

    # ------------------------------------------------------------ protocol

    def _send(self, method: str, params: dict[str, Any] | None, session: str | None) -> int:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        return self._next_id

    def _pump(self, deadline: float, waiting_for: str) -> None:
        """Read what Chromium sent; file replies by id, hand events to `handlers`."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"chromium did not answer {waiting_for} in time")
        if select.select([self._from_chrome], [], [], left)[0]:
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                log = self.log_path.read_text(errors="replace")[-3000:]
                raise CdpError(f"chromium exited:\n{log}")
            self._buffer += chunk
        while b"\0" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\0", 1)
            message = json.loads(raw)
            if "id" in message:
                self._replies[message["id"]] = message
                continue
            method = message.get("method", "")
            if method == "Runtime.exceptionThrown":
                details = message["params"]["exceptionDetails"]
                self.js_errors.append(
                    details.get("exception", {}).get("description") or details["text"]
                )
            elif method == "Runtime.consoleAPICalled" and message["params"]["type"] == "error":
                self.js_errors.append(repr(message["params"]["args"]))
            handler = self.handlers.get(method)
            if handler is not None:
                handler(message["params"])  # may call() in turn: replies are filed by id

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        my_id = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while my_id not in self._replies:
            self._pump(deadline, method)
        reply = self._replies.pop(my_id)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    def answer_auth(self, username: str, password: str) -> None:
        """Answer HTTP authentication challenges like a user typing into the dialog."""

        def paused(params: dict[str, Any]) -> None:
            self.page("Fetch.continueRequest", {"requestId": params["requestId"]})

        def challenged(params: dict[str, Any]) -> None:
            self.auth_challenges.append(params["authChallenge"])
            self.page(
                "Fetch.continueWithAuth",
                {
                    "requestId": params["requestId"],
                    "authChallengeResponse": {
                        "response": "ProvideCredentials",
                        "username": username,
                        "password": password,
                    },
                },
            )

        self.handlers["Fetch.requestPaused"] = paused
        self.handlers["Fetch.authRequired"] = challenged
        self.page("Fetch.enable", {"handleAuthRequests": True, "patterns": [{"urlPattern": "*"}]})

    def page(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.call(method, params, session=self.session)

    # ------------------------------------------------------------ helpers

    def goto(self, url: str) -> None:
        result = self.page("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError(f"navigate {url}: {result['errorText']}")

    def js(self, expression: str) -> Any:
        """Evaluate in the page; returns the value (JSON-able) or raises on a JS exception."""
        result = self.page(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            why = details.get("exception", {}).get("description") or details.get("text")
            raise CdpError(f"{expression}: {why}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press + release) in the middle of the element."""
        box = self.js(
            f"(function(){{var r=document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            "return [r.left+r.width/2, r.top+r.height/2];})()"
        )
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.page(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self.page(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": height,
                "deviceScaleFactor": 2 if mobile else 1,
                "mobile": mobile,
            },
        )

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        data = self.page("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(CdpError, TimeoutError, OSError):
            self.call("Browser.close", timeout=10)
        stop_process(self.proc)
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
