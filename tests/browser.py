"""Headless Chromium for the browser tests, driven over the DevTools protocol on a pipe.

Skipped when /usr/bin/chromium is absent (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe: with
    --remote-debugging-pipe it reads NUL-terminated JSON commands on fd 3 and writes replies
    and events on fd 4. No websocket, no port, no extra dependency."""

    def __init__(self, profile: Path):
        cmd_r, cmd_w = os.pipe()  # we write commands, the browser reads them on its fd 3
        out_r, out_w = os.pipe()  # the browser writes on its fd 4, we read
        # high, close-on-exec copies of the child's ends, so that dup2 onto 3 and 4 is safe
        hi_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        hi_w = fcntl.fcntl(out_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(cmd_r)
        os.close(out_w)
        args = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
            "--remote-debugging-pipe", "about:blank",
        ]
        self.log = profile / "chromium.log"
        try:
            self.pid = os.posix_spawn(CHROMIUM, args, os.environ, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(self.log), os.O_WRONLY | os.O_CREAT, 0o644),
                (os.POSIX_SPAWN_DUP2, 1, 2),
                (os.POSIX_SPAWN_DUP2, hi_r, 3),
                (os.POSIX_SPAWN_DUP2, hi_w, 4),
            ])
        finally:
            os.close(hi_r)
            os.close(hi_w)
        self.w, self.r = cmd_w, out_r
        self.buf = b""
        self.events: list[dict] = []
        self.next_id = 0

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return ev
            seen = len(self.events)
            self.events.append(self._read(deadline))

    def open(self, url: str, width: int, height: int, mobile: bool) -> str:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.send(domain, session=sid)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}, sid)
        self.send("Page.navigate", {"url": url}, sid)
        self.wait_event("Page.loadEventFired", sid)
        self.send("Runtime.evaluate", {"expression": "1"}, sid)  # let pending events arrive
        return sid

    def evaluate(self, sid: str, expression: str):
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, sid)
        return res["result"].get("value")

    def errors(self, sid: str) -> list[str]:
        out = []
        for ev in self.events:
            if ev.get("sessionId") != sid:
                continue
            p = ev.get("params", {})
            if ev.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif ev.get("method") == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:300])
            elif ev.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + p["entry"].get("text", ""))
        return out

    def screenshot(self, sid: str) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"}, sid)["data"])

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (TimeoutError, EOFError, RuntimeError, OSError):
            pass
        deadline = time.monotonic() + 10
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        os.close(self.w)
        os.close(self.r)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent (Debian: apt-get install chromium); browser checks skipped")
    profile = tmp_path_factory.mktemp("chromium-profile")
    b = Browser(profile)
    yield b
    b.close()
    shutil.rmtree(profile, ignore_errors=True)
