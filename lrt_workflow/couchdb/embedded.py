"""The embedded CouchDB-compatible server (pouchdb-server) and its lifecycle.

Production users point the workflow at their PiCaS server. Everyone else gets
this one: pouchdb-server from the project's ``node_modules``, listening on
loopback, with its data in a folder on disk so that a rerun finds its tokens.

A small JSON state file in the data folder records the PID and URL of the
running server. It is what lets a second ``start`` find the running server
instead of starting another, and what lets ``stop`` signal exactly that PID.
Start and stop hold an exclusive lock on the data folder while they work, so
two of them racing cannot both launch a server.

The workflow and the ``lrt`` commands share the server through `session`:
each registers itself as a user, the first starts the server, and the last
to leave stops it. A user that died (a killed run) no longer counts. A server
started by hand (``lrt couchdb start``) has a user that never leaves, so only
``lrt couchdb stop`` stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from lrt_workflow.errors import ServerError
from lrt_workflow.files import write_json

#: The value of ``couchdb.url`` that asks for this server, and where it keeps its data by default.
EMBEDDED = "embedded"
DEFAULT_DATA_DIR = ".lrt/couchdb"
STATE_FILE = "server.json"
USERS_DIR = "users"
#: The user of a server started by hand: it never leaves.
BY_HAND = "by-hand"
LOCK_FILE = "server.lock"
LOG_FILE = "server.log"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def is_embedded(url: str | None) -> bool:
    """True when a CouchDB URL setting asks for the embedded server (``embedded``, or nothing)."""
    return (url or EMBEDDED) == EMBEDDED


@dataclass(frozen=True)
class ServerState:
    """What the state file records about one running server."""

    pid: int
    url: str
    port: int
    data_dir: str
    started_at: float


def find_pouchdb_server() -> Path:
    """Return the pouchdb-server entry script, or say how to install it.

    ``LRT_POUCHDB_SERVER`` overrides the location; otherwise the project's
    own ``node_modules`` (installed by ``npm ci``) is used.
    """
    override = os.environ.get("LRT_POUCHDB_SERVER")
    script = Path(override) if override else PROJECT_ROOT / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"
    if not script.is_file():
        raise ServerError(
            f"pouchdb-server is not installed (looked for {script}). "
            f"Run 'npm ci' in {PROJECT_ROOT}, or 'make demo' / 'make test', which install it."
        )
    return script


def find_node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ServerError(
            "'node' was not found on PATH. The embedded CouchDB server needs Node.js 18 or newer: "
            "install it with your system's package manager (for example 'apt-get install nodejs npm'), "
            "or set couchdb.url in config.yaml to an existing CouchDB server."
        )
    return node


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0) but will never serve again.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, which tells a reused PID from its first owner."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> str:
    """This process as a user of the server: its PID and start time."""
    return f"{os.getpid()}-{_start_time(os.getpid())}"


def _user_alive(name: str) -> bool:
    if name == BY_HAND:
        return True
    pid, _, started = name.partition("-")
    return pid.isdigit() and pid_alive(int(pid)) and _start_time(int(pid)) == started


def is_pouchdb_process(pid: int) -> bool:
    """True when ``pid`` is alive and runs pouchdb-server.

    PIDs are reused, so a state file left by a server that died long ago may
    name some unrelated process; that process must never be signalled.
    """
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        # No /proc (not Linux): liveness is the best evidence there is.
        return True
    return b"pouchdb-server" in cmdline


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when a CouchDB-compatible server answers its welcome request at ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            welcome = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return isinstance(welcome, dict) and ("couchdb" in welcome or "express-pouchdb" in welcome)


class EmbeddedServer:
    """Start, find and stop the pouchdb-server that keeps its data in ``data_dir``."""

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, host: str = "127.0.0.1"):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.host = host

    @property
    def state_file(self) -> Path:
        return self.data_dir / STATE_FILE

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_FILE

    def read_state(self) -> ServerState | None:
        try:
            return ServerState(**json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            # A half-written or foreign file is as good as none; it is replaced on start.
            return None

    def running(self) -> ServerState | None:
        """The recorded server, if its process is alive and it answers."""
        state = self.read_state()
        if state and is_pouchdb_process(state.pid) and answers(state.url):
            return state
        return None

    @contextlib.contextmanager
    def _exclusive(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def start(self, timeout: float = 60.0) -> tuple[ServerState, bool]:
        """Start the server unless it already runs.

        Returns the server's state and whether this call started it, so a
        caller that found a running server knows not to stop it afterwards.
        """
        with self._exclusive():
            return self._start(timeout)

    def _start(self, timeout: float) -> tuple[ServerState, bool]:
        """`start`, under the exclusive lock."""
        state = self.read_state()
        if state and is_pouchdb_process(state.pid):
            if self._wait_until_answering(state, timeout=min(timeout, 10.0)):
                return state, False
            raise ServerError(
                f"pouchdb-server pid {state.pid} for {self.data_dir} is running but does not answer at "
                f"{state.url}; stop it with 'lrt couchdb stop --data-dir {self.data_dir}' and start again."
            )
        self.state_file.unlink(missing_ok=True)  # stale: its process is gone
        return self._launch(timeout), True

    def _launch(self, timeout: float) -> ServerState:
        node = find_node()
        script = find_pouchdb_server()
        port = self.port or free_port(self.host)
        if self.port and not self._port_free(port):
            raise ServerError(f"port {port} on {self.host} is already in use; choose another port or leave it unset")
        url = f"http://{self.host}:{port}/"
        command = [
            node, str(script),
            "--host", self.host,
            "--port", str(port),
            "--dir", str(self.data_dir),
            "--config", str(self.data_dir / "config.json"),
            "--no-stdout-logs",
        ]
        with open(self.log_file, "ab") as log:
            # A new session detaches the server from the terminal and from
            # Make or pytest, so it outlives the command that started it and a
            # Ctrl-C aimed at that command does not kill it half-way.
            process = subprocess.Popen(
                command,
                cwd=self.data_dir,  # pouchdb-server writes its log.txt to the working folder
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        state = ServerState(pid=process.pid, url=url, port=port, data_dir=str(self.data_dir), started_at=time.time())
        if not self._wait_until_answering(state, timeout, process):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
            raise ServerError(
                f"pouchdb-server did not answer at {url} within {timeout:.0f} s. Last lines of {self.log_file}:\n"
                + self._log_tail()
            )
        write_json(self.state_file, asdict(state))
        return state

    def _port_free(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((self.host, port))
            except OSError:
                return False
        return True

    def _wait_until_answering(self, state: ServerState, timeout: float, process: subprocess.Popen | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                return False
            if answers(state.url, timeout=1.0):
                return True
            time.sleep(0.1)
        return False

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> ServerState | None:
        """Stop the recorded server, whoever uses it. Returns its state, or None if none was running.

        A state file whose process is gone is removed, so the next start is clean.
        """
        with self._exclusive():
            return self._stop(timeout)

    def _stop(self, timeout: float = 15.0) -> ServerState | None:
        """`stop`, under the exclusive lock."""
        for entry in self._users():
            entry.unlink(missing_ok=True)
        state = self.read_state()
        if state is None:
            return None
        stopped = None
        if is_pouchdb_process(state.pid):
            self._terminate(state.pid, timeout)
            stopped = state
        self.state_file.unlink(missing_ok=True)
        return stopped

    # --- sharing the server ----------------------------------------------------------

    def acquire(self, user: str | None = None, timeout: float = 60.0) -> ServerState:
        """Start the server unless it runs, and count ``user`` (by default this process) among its users."""
        with self._exclusive():
            state, _ = self._start(timeout)
            (self.data_dir / USERS_DIR).mkdir(exist_ok=True)
            (self.data_dir / USERS_DIR / (user or this_process())).touch()
        return state

    def release(self, user: str | None = None) -> bool:
        """Stop counting ``user``; stop the server when no live user is left. True if it was stopped."""
        with self._exclusive():
            (self.data_dir / USERS_DIR / (user or this_process())).unlink(missing_ok=True)
            if any(_user_alive(entry.name) for entry in self._users()):
                return False
            return self._stop() is not None

    @contextlib.contextmanager
    def session(self, timeout: float = 60.0):
        """The server, running for the body: started if need be, stopped after if nobody else uses it."""
        state = self.acquire(timeout=timeout)
        try:
            yield state
        finally:
            self.release()

    def _users(self) -> list[Path]:
        folder = self.data_dir / USERS_DIR
        return sorted(folder.iterdir()) if folder.is_dir() else []

    @staticmethod
    def _terminate(pid: int, timeout: float) -> None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.05)
