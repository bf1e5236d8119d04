"""What every part of the benchmark shares: the servers it measures, fresh databases on them,
the processes it starts, and the formatting of its tables.

A server is the project's embedded pouchdb-server, a throw-away Apache CouchDB started from
its release tarball (with `tests/servers.py`'s `ApacheCouchDB`, the same code the tests use),
or a server given by URL, with the credentials of PICAS_USER and PICAS_PASSWORD. Passwords
never go on a command line: child processes get them in their environment.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import secrets
import statistics
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/servers.py: how an Apache CouchDB is started and stopped

import servers as test_servers  # noqa: E402

from lrt_workflow.couchdb import connect, open_database  # noqa: E402
from lrt_workflow.couchdb.credentials import PicasCredentials  # noqa: E402
from lrt_workflow.couchdb.embedded import EmbeddedServer  # noqa: E402

TOKEN_TYPE = "bench"
OBSID = "L229507"
PROCESS_TIMEOUT = 1800.0
_START = time.monotonic()


def say(message: str) -> None:
    """Progress on stderr, so stdout stays pure Markdown."""
    print(f"[bench {time.monotonic() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds < 1 else f"{seconds * 1000:,.0f}"


def fmt_n(value: float) -> str:
    return f"{value:,.0f}"


def fmt_mb(kilobytes: float) -> str:
    return f"{kilobytes / 1024:.0f}"


def table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    """One server the benchmark measures; ``start`` and ``stop`` are no-ops for a server given by URL."""

    kind: str  # embedded | apache | url
    url: str = ""
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    pid: int | None = None  # the server's process, when it runs here (for its CPU time)
    version: str = ""
    _handle: object = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return {"embedded": "pouchdb-server", "apache": "Apache CouchDB"}.get(self.kind, "your server") + \
            (f" {self.version}" if self.version else "")

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.user, self.password) if self.user else None

    def environment(self) -> dict[str, str]:
        """What a child process needs to reach the server: the credentials, never on its command line."""
        return {"PICAS_USER": self.user, "PICAS_PASSWORD": self.password} if self.user else {}

    def credentials(self) -> PicasCredentials:
        return PicasCredentials(user=self.user, password=self.password, url=self.url)

    def start(self, workdir: Path) -> None:
        if self.kind == "embedded":
            self._handle = EmbeddedServer(workdir / "couchdb-embedded")
            state, _ = self._handle.start()
            self.url, self.pid = state.url.rstrip("/"), state.pid
            package = ROOT / "node_modules" / "pouchdb-server" / "package.json"
            self.version = json.loads(package.read_text())["version"] if package.exists() else ""
        elif self.kind == "apache":
            admin = test_servers.Account("admin", "Bench-" + secrets.token_hex(12))
            self._handle = test_servers.ApacheCouchDB(test_servers.find_tarball(), admin)
            self._handle.start()
            self.url, self.pid, self.user, self.password = self._handle.url.rstrip("/"), self._handle.pid, \
                admin.name, admin.password
        if self.kind != "embedded":
            self.version = requests.get(self.url, auth=self.auth, timeout=30).json().get("version", "")
        say(f"{self.label} at {self.url}" + (f" (pid {self.pid})" if self.pid else ""))

    def stop(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(Exception):
                self._handle.stop()
            say(f"{self.label} stopped")
            self._handle = None


def choose_servers(choices: Sequence[str]) -> list[Server]:
    """``embedded``, ``apache`` or an http(s) URL, each once; ``auto`` is embedded, and apache when
    its tarball is there. A URL's credentials come from PICAS_USER and PICAS_PASSWORD."""
    chosen: list[Server] = []
    for choice in choices:
        if choice == "auto":
            chosen.append(Server("embedded"))
            try:
                test_servers.find_tarball()
                chosen.append(Server("apache"))
            except test_servers.Unavailable as missing:
                say(f"Apache CouchDB not measured: {missing}")
        elif choice in ("embedded", "apache"):
            if choice == "apache":  # before anything is measured, not after the servers before it
                try:
                    test_servers.find_tarball()
                except test_servers.Unavailable as missing:
                    raise SystemExit(f"bench.py: --server apache: {missing}") from None
            chosen.append(Server(choice))
        elif choice.startswith(("http://", "https://")):
            parts = urllib.parse.urlsplit(choice)
            if parts.username or parts.password:
                raise SystemExit("bench.py: put the credentials in PICAS_USER and PICAS_PASSWORD, not in the URL")
            chosen.append(Server("url", url=choice.rstrip("/"), user=os.environ.get("PICAS_USER"),
                                 password=os.environ.get("PICAS_PASSWORD")))
        else:
            raise SystemExit(f"bench.py: --server {choice!r} is not embedded, apache, auto or an http(s) URL")
    return chosen


class Bench:
    """One server of this run, a client of it, and fresh databases on it."""

    def __init__(self, server: Server, workdir: Path):
        self.server = server
        self.workdir = workdir
        self.client = connect(server.credentials())
        self.session = requests.Session()  # the "plain requests.Session" of the raw and classic patterns
        self.session.auth = server.auth
        self.session.trust_env = False
        # On a server of yours, the databases carry a random part, so they never meet a real one.
        self.prefix = "lrt_bench_" + (secrets.token_hex(3) + "_" if server.kind == "url" else "")
        self._numbers = itertools.count()
        self.made: list[str] = []

    @property
    def url(self) -> str:
        return self.server.url

    def fresh_database(self, label: str):
        """A new, empty database, so no measurement sees another's documents or indexes."""
        name = f"{self.prefix}{re.sub(r'[^a-z0-9_]', '', label.lower())[:30]}_{next(self._numbers):03d}"
        self.made.append(name)
        return open_database(self.client, name, create=True)

    def drop(self, db) -> None:
        """Delete a database once measured, so the server's folder stays small."""
        self.session.delete(db.database_url)
        with contextlib.suppress(ValueError):
            self.made.remove(db.database_name)

    def close(self) -> None:
        for name in list(self.made):  # whatever an error left behind
            with contextlib.suppress(Exception):
                self.session.delete(f"{self.url}/{name}")
        with contextlib.suppress(Exception):
            self.session.close()


def child_environment(server: Server, **extra: str) -> dict:
    """Our environment without PiCaS settings but the server's credentials, so a child uses
    exactly the URL and database it is given, and reaches the server as we do."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICAS")}
    return {**env, "PYTHONUNBUFFERED": "1", **server.environment(), **extra}


class CpuMeter:
    """How much CPU other processes took during the run: the machine's busy time minus ours.

    Ours is this process, the children it waited for (workers, Snakemake) and the servers.
    Timings on a 2-core machine mean little if, say, a test suite ran alongside; this makes
    that visible in the results.
    """

    def __init__(self):
        self.started = time.monotonic()
        self.busy = self._machine_busy()
        self.own = self._own()

    @staticmethod
    def _machine_busy() -> float:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return 0.0
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    @staticmethod
    def process_cpu(pid: int | None) -> float:
        """CPU seconds of a process that is not our waited-for child (a server), with its children."""
        if not pid:
            return 0.0
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def tree_cpu(pid: int | None) -> float:
        """CPU seconds of a process and of every descendant alive now (Apache CouchDB's JavaScript
        processes live as long as the server, so `process_cpu` alone never sees their time)."""
        if not pid:
            return 0.0
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(stat.parent.name))
        total, todo = 0.0, [pid]
        while todo:
            current = todo.pop()
            total += CpuMeter.process_cpu(current)
            todo += children.get(current, [])
        return total

    def others(self, server_cpu: float) -> tuple[float, float]:
        """(CPU seconds other processes used, the same as a fraction of the machine)."""
        elapsed = time.monotonic() - self.started
        busy = self._machine_busy() - self.busy
        other = max(0.0, busy - (self._own() - self.own) - server_cpu)
        return other, other / max(1e-9, elapsed * (os.cpu_count() or 1))


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Finished:
    """A child process that ended: its exit code, output, peak memory (kB, VmHWM), when, and the CPU
    time it and the descendants it waited for (a worker's jobs) used."""

    code: int
    out: str
    peak_kb: int
    seconds: float  # from its start
    cpu: float = 0.0  # user + system seconds, from wait4


# How often a child's VmHWM is read. It only grows, so the last reading before the exit is the
# peak, less whatever the process added in its last interval.
HWM_INTERVAL = 0.02


def vm_hwm_kb(pid: int) -> int | None:
    """The process's peak resident memory so far, in kB; None once it has no memory (a zombie) or
    no longer exists. Not ``wait4``'s ru_maxrss: Linux carries that over fork and exec, so a child
    of this (large) benchmark would report the benchmark's size. VmHWM belongs to the address
    space, which exec replaces."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


class Child:
    """A process this benchmark started. A thread reads its VmHWM until it exits; it is reaped
    only after that thread has ended, so the pid read cannot be another process's.
    Its stdout goes to a file read at the end, its stderr to ``log``."""

    def __init__(self, command: list[str], cwd: Path, log: Path, env: dict):
        self.out = open(log.with_suffix(".out"), "w+")
        self.err = open(log.with_suffix(".err"), "wb")
        self.started = time.perf_counter()
        # Popen returns once the exec has succeeded, so every reading is of the new program.
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, text=True)
        self.finished: Finished | None = None
        self.peak_kb = 0
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()

    def _sample(self) -> None:
        while (kb := vm_hwm_kb(self.proc.pid)) is not None:
            self.peak_kb = max(self.peak_kb, kb)
            time.sleep(HWM_INTERVAL)

    def poll(self) -> Finished | None:
        if self.finished is None:
            # WNOWAIT: learn that it ended (and when) without reaping it while the sampler may still read.
            if os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                return None
            seconds = time.perf_counter() - self.started
            self.sampler.join()
            _, status, usage = os.wait4(self.proc.pid, 0)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            self.out.seek(0)
            self.finished = Finished(self.proc.returncode, self.out.read(), self.peak_kb, seconds,
                                     usage.ru_utime + usage.ru_stime)
            self.out.close()
            self.err.close()
        return self.finished

    def wait(self, timeout: float = PROCESS_TIMEOUT) -> Finished:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.proc.args[:4]}... still running after {timeout:.0f} s")
            time.sleep(0.005)
        return self.finished

    def stop(self) -> None:
        """Terminate it if it still runs (by its own pid), and reap it."""
        # os.kill, not Popen.terminate: Popen's own poll would reap it behind the sampler's back.
        if self.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.wait()


def run_processes(commands: list[list[str]], cwd: Path, log_prefix: Path, env: dict,
                  timeout: float = PROCESS_TIMEOUT) -> tuple[float, list[Finished]]:
    """Start every command at once and wait for all; (seconds, [Finished] in order). On an error
    or Ctrl-C the processes this function started are terminated."""
    children = []
    started = time.perf_counter()
    try:
        for i, command in enumerate(commands):
            children.append(Child(command, cwd, Path(f"{log_prefix}-{i}"), env))
        finished = [child.wait(timeout) for child in children]
        return time.perf_counter() - started, finished
    finally:
        for child in children:
            child.stop()


def last_json_line(text: str | None) -> dict | None:
    for line in reversed((text or "").splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    return None
