"""A real headless Chromium for tests, driven over the DevTools protocol with the standard library only.

Chromium started with ``--remote-debugging-pipe`` reads protocol commands on
its fd 3 and writes replies and events on its fd 4, as JSON messages each
ended by a NUL byte. `Browser` starts it in a fresh profile folder, and its
`close` (also run when a ``with`` block is left by an exception) ends it and
every process it started, so no test leaves a Chromium behind.

    with Browser.launch(tmp_path) as browser:
        page = browser.new_page()
        page.goto(path.as_uri())
        page.evaluate("document.title")
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", "--disable-breakpad", "--disable-crash-reporter",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--window-size=1280,900",
         "--remote-debugging-pipe")
TIMEOUT = 30.0


class BrowserError(Exception):
    """Chromium did not answer, answered with an error, or exited."""


def find_chromium() -> str | None:
    """``$LRT_CHROMIUM`` when set, else the first Chromium or Chrome on PATH."""
    named = os.environ.get("LRT_CHROMIUM")
    if named:
        return shutil.which(named) or (named if os.access(named, os.X_OK) else None)
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def _high_fd(fd: int) -> int:
    """The same pipe end on a descriptor above 4 (close-on-exec), so the child's dup2 to 3 and 4 is safe."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a process, from /proc; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), fields[19]


def _descendants(root: int) -> dict[int, str]:
    """{pid: start time} of the processes under ``root`` now (Linux)."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            children.setdefault(stat[1], []).append((int(entry.name), stat[2]))
    found, todo = {}, [root]
    while todo:
        for child, started in children.get(todo.pop(), []):
            if child not in found:
                found[child] = started
                todo.append(child)
    return found


def processes_using(marker: str) -> dict[int, str]:
    """{pid: start time} of processes whose command line mentions ``marker`` (a profile folder)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes() and (stat := _stat(int(entry.name))):
                    found[int(entry.name)] = stat[2]
            except OSError:
                continue
    return found


def still_running(processes: dict[int, str]) -> list[int]:
    """Those of ``processes`` ({pid: start time}) that have not ended. A zombie has ended (only its
    parent's wait is due), and a pid now used by a process started at another time is someone else's."""
    alive = []
    for pid, started in processes.items():
        stat = _stat(pid)
        if stat and stat[0] != "Z" and stat[2] == started:
            alive.append(pid)
    return alive


class Browser:
    """One Chromium process and its protocol pipe."""

    def __init__(self, process: subprocess.Popen, to_browser: int, from_browser: int, profile: Path):
        self.process, self.profile = process, profile
        self._out, self._in = to_browser, from_browser
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.pids: dict[int, str] = {process.pid: (_stat(process.pid) or ("", 0, ""))[2]}

    @classmethod
    def launch(cls, folder: Path, binary: str | None = None, extra_flags=()) -> "Browser":
        binary = binary or find_chromium()
        if not binary:
            raise BrowserError("no Chromium found")
        profile = Path(folder) / "chromium-profile"
        profile.mkdir(parents=True)
        commands_r, commands_w = map(_high_fd, os.pipe())
        replies_r, replies_w = map(_high_fd, os.pipe())

        def plumbing():  # in the child, before exec: the protocol pipe on fds 3 and 4
            os.dup2(commands_r, 3)
            os.dup2(replies_w, 4)

        process = subprocess.Popen(
            [binary, *FLAGS, *extra_flags, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(Path(folder) / "chromium.log", "wb"),
            preexec_fn=plumbing, close_fds=False, start_new_session=True,
        )
        os.close(commands_r)
        os.close(replies_w)
        browser = cls(process, commands_w, replies_r, profile)
        try:
            browser.send("Browser.getVersion")
        except BaseException:
            browser.close()
            raise
        return browser

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the protocol -------------------------------------------------------------

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = TIMEOUT) -> dict:
        """Send one command and wait for its reply; events that arrive meanwhile are kept in ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._out, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline, f"{method}")
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str | None = None, timeout: float = TIMEOUT) -> dict:
        """The first event ``method`` (of ``session``) not yet consumed."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method and (session is None or event.get("sessionId") == session):
                    return self.events.pop(index)
            self.events.append(self._read(deadline, f"event {method}"))

    def _read(self, deadline: float, waiting_for: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"Chromium did not answer in {TIMEOUT:g} s (waiting for {waiting_for})")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed its pipe (exit status {self.process.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def new_page(self, *, javascript: bool = True) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.call("Page.enable")
        page.call("Runtime.enable")
        if not javascript:
            page.call("Emulation.setScriptExecutionDisabled", {"value": True})
        return page

    # --- the end ------------------------------------------------------------------

    def close(self) -> None:
        """End Chromium and every process it started; never raises, never leaves one running."""
        if self.process.poll() is None:
            self.pids.update(_descendants(self.process.pid))
            try:
                self.send("Browser.close", timeout=5)
            except (BrowserError, OSError, ValueError):
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            self.pids.update(_descendants(self.process.pid))
        if self.process.returncode is None or still_running(self.pids):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: all of its helpers
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 10
        while True:  # SIGKILL is not instant, and a helper may have forked meanwhile: repeat until all are gone
            self.pids.update(processes_using(str(self.profile)))
            alive = still_running(self.pids)
            if not alive or time.monotonic() > deadline:
                break
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.05)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        self._out = self._in = -1


class Page:
    """One tab, through its flattened protocol session."""

    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        reply = self.call("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise BrowserError(f"cannot open {url}: {reply['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (DevTools runs it even when the page's scripts are off)."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            raise BrowserError(f"{expression[:80]}...: {details.get('exception', {}).get('description') or details}")
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """Scroll the element into view and click its middle with the mouse, as a person would."""
        box = self.evaluate(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) return null;
            el.scrollIntoView({{block: "center"}});
            const r = el.getBoundingClientRect();
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
        }})()""")
        if box is None:
            raise BrowserError(f"nothing on the page matches {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"], "button": "left",
                                                   "clickCount": 1})

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page (all of it, not only the window, when ``full_page``)."""
        params = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        Path(path).write_bytes(base64.b64decode(self.call("Page.captureScreenshot", params)["data"]))
        return Path(path)
