"""Where an executor test keeps its tokens, and the ``lrt worker`` pilots that serve them.

* `Couch`: the server and database of one test, as the executor's options, the pilots' options
  and the credentials both get from the environment (never from a command line);
* `Pilots`: local ``lrt worker --type snakemake`` processes, each in a session of its own;
  `Pilots.stop` ends them with SIGTERM (as a batch system would) and kills what is left, so no
  test leaves a pilot or a job of one running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

import project
from project import clean_environment

TOKEN_TYPE = "snakemake"


@dataclass
class Couch:
    """``url`` None: the folder's own embedded server (``--picas-url`` left at its default, 'embedded')."""

    url: str | None
    database: str
    env: dict = field(default_factory=dict)

    def executor_args(self) -> list[str]:
        return [] if self.url is None else ["--picas-url", self.url, "--picas-database", self.database]

    def pilot_args(self) -> list[str]:
        return ["--url", self.url or "embedded", "--database", self.database]

    def base_url(self, folder: Path) -> str:
        if self.url is not None:
            return self.url.rstrip("/") + "/"
        return json.loads((folder / ".lrt" / "couchdb" / "server.json").read_text())["url"]

    @property
    def auth(self):
        return (self.env["PICAS_USER"], self.env["PICAS_PASSWORD"]) if self.env else None

    def tokens(self, folder: Path, *, attachments: bool = False) -> dict[str, dict]:
        """Every token of the database by id (design documents left out)."""
        params = {"include_docs": "true", **({"attachments": "true"} if attachments else {})}
        response = requests.get(f"{self.base_url(folder)}{self.database}/_all_docs", params=params,
                                auth=self.auth, timeout=30)
        response.raise_for_status()
        return {row["id"]: row["doc"] for row in response.json()["rows"] if not row["id"].startswith("_design/")}

    def database_exists(self, folder: Path) -> bool:
        try:
            url = self.base_url(folder)
        except (OSError, ValueError):
            return False
        try:
            return requests.get(f"{url}{self.database}", auth=self.auth, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def environment(self, home: Path, **extra: str) -> dict:
        return clean_environment(home, **self.env, **extra)


class Pilots:
    """``lrt worker`` pilots of one test; `stop` ends every one of them."""

    def __init__(self, folder: Path, couch: Couch):
        self.folder = folder
        self.couch = couch
        self.processes: list[subprocess.Popen] = []

    def start(self, count: int = 1, *, lease: float = 60, idle: float = 600, env: dict | None = None,
              extra: tuple = ()) -> list[subprocess.Popen]:
        started = []
        for _ in range(count):
            number = len(self.processes)
            log = open(self.folder / f"pilot-{number}.log", "w")
            process = subprocess.Popen(
                [sys.executable, "-m", "lrt_workflow", "worker", "--type", TOKEN_TYPE, *self.couch.pilot_args(),
                 "--idle-seconds", str(idle), "--poll-seconds", "0.2", "--lease-seconds", str(lease),
                 "--workdir", str(self.folder / f"pilot-{number}"), *extra],
                cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.couch.environment(self.folder, **(env or {})), start_new_session=True)
            log.close()
            self.processes.append(process)
            started.append(process)
        return started

    def log(self, index: int) -> str:
        return (self.folder / f"pilot-{index}.log").read_text()

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the pilot alone, as a lost node would (its job's watchdog ends the job)."""
        process.kill()
        process.wait()

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM every pilot still running, then SIGKILL whatever is left of their sessions."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the pilot's session: any job left behind
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()


def snakefile(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Snakefile").write_text(text)
    return folder


class Runs:
    """``snakemake --executor picas`` runs of one test, on `project.Runs` (a session each, ended by
    `kill_all`), each with its output in a file (``snakemake-<n>.log``)."""

    def __init__(self, folder: Path, couch: Couch):
        self.folder = folder
        self.couch = couch
        self._runs = project.Runs()

    def start(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        path = self.folder / f"snakemake-{len(self._runs.started)}.log"
        process = self._runs.start(
            self.folder, sys.executable, "-m", "snakemake", "--executor", "picas", "--jobs", "8",
            "--picas-status-seconds", "0.3", "--latency-wait", "10", *self.couch.executor_args(), *args,
            env={**self.couch.env, **(env or {})}, output=path)
        process.log_path = path
        return process

    def finish(self, process: subprocess.Popen, timeout: float = 300) -> str:
        """Wait for a run; returns its output. A run that does not end in time is killed."""
        try:
            return self._runs.finish(process, check=False, timeout=timeout).stdout
        except subprocess.TimeoutExpired:
            self._runs.kill(process)
            raise AssertionError("snakemake did not finish in time:\n" + process.log_path.read_text()[-4000:])

    def run(self, *args: str, env: dict | None = None, timeout: float = 300) -> tuple[int, str]:
        process = self.start(*args, env=env)
        output = self.finish(process, timeout)
        return process.returncode, output

    def kill_all(self) -> None:
        self._runs.kill_all()
