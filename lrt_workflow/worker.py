"""The pilot worker: take tokens from a view until none are left, and run each one's job.

It follows the PiCaS worker contract (reference, section 4) and avoids the
three defects of the ``picas`` client's ``RunActor``:

* **No double claims.** A token is claimed only if the document itself, as
  read, is still free (``lock == 0 and done == 0``), and the claim is saved
  with the revision that check read; a 409 means another worker won.
* **No dropped results.** When saving the result meets a conflict, the token
  is re-read and the result merged into the new revision, then saved again.
* **Time limits that stop work.** The job runs in its own process group, and
  ``max_token_seconds`` kills the whole group.

While a job runs, a heartbeat keeps the token's lease alive, so the
orchestrator resets only the tokens of workers that died. SIGTERM (a batch
system ending the pilot) stops the job and releases the token at once.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lrt_workflow.couchdb import CouchDBError, UpdateConflict
from lrt_workflow.token.archive import attachment_filename
from lrt_workflow.token.model import is_log_attachment, reset_fields
from lrt_workflow.token.store import TokenStore, fetch_document, inline_attachment, save_document

log = logging.getLogger(__name__)

CLAIM_WINDOW = 25
CLAIM_ATTEMPTS = 10
LOG_TAIL_BYTES = 1 << 20
KILL_GRACE_SECONDS = 10
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
TIMEOUT_EXIT = 124  # what coreutils' timeout reports, so it reads the same
#: Never handed to a job: the worker's own credentials.
SECRET_ENVIRONMENT = ("PICAS_PASSWORD", "PICAS_USER", "PICAS_URL", "PICASRC")  # a URL may hold user:password@


@dataclass
class WorkerReport:
    processed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    conflicts: int = 0
    released: str | None = None

    def __str__(self) -> str:
        return (f"processed {len(self.processed)} tokens ({len(self.failed)} failed), "
                f"{self.conflicts} claim conflicts")


class Stop(Exception):
    """SIGTERM or SIGINT arrived: stop the job, release the token, leave."""


def job_environment(token: dict, workdir: Path, base: dict | None = None) -> dict:
    """The job's environment: ours without credentials, plus the token's ``_token_keys``."""
    env = {k: v for k, v in (base if base is not None else os.environ).items() if k not in SECRET_ENVIRONMENT}
    variables = (token.get("config.json") or {}).get("variables") or {}
    for var, key in (variables.get("_token_keys") or {}).items():
        value = token.get(key, "")
        env[var.lstrip("$")] = value if isinstance(value, str) else json.dumps(value)
    for var, name in (variables.get("_attachments") or {}).items():
        env[var.lstrip("$")] = attachment_filename(name)
    env.update(LRT_TOKEN_ID=token["_id"], LRT_TOKEN_TYPE=str(token.get("type", "")), LRT_WORKDIR=str(workdir))
    return env


class Worker:
    """Claims and runs tokens of one design document's view."""

    def __init__(
        self,
        store: TokenStore,
        command: str | None,
        *,
        view: str = "todo",
        workdir: str | os.PathLike | None = None,
        max_token_seconds: float | None = None,
        heartbeat_seconds: float = 60.0,
        keep_workdirs: bool = False,
        max_scrub: int = 0,
        until_finished: bool = False,
        lease_seconds: float | None = None,
        poll_seconds: float = 5.0,
    ):
        self.store = store
        self.command = command
        self.view = view
        self.root = Path(workdir or Path(tempfile.gettempdir()) / "lrt-worker")
        self.max_token_seconds = max_token_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.keep_workdirs = keep_workdirs
        self.max_scrub = max_scrub
        self.until_finished = until_finished
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.hostname = socket.gethostname()
        self.worker_id = f"{self.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.report = WorkerReport()
        self._current: dict | None = None
        self._process: subprocess.Popen | None = None
        self._doc_lock = threading.Lock()  # the heartbeat and the main loop both save the token
        self._stopping = False

    # --- claiming --------------------------------------------------------------

    def claim(self) -> dict | None:
        """Lock one free token, or return None when the view has none left."""
        for _ in range(CLAIM_ATTEMPTS):
            rows = self.store.view_rows(self.view, limit=CLAIM_WINDOW, include_docs=True)
            candidates = [row["doc"] for row in rows if row.get("doc")]
            if not candidates:
                return None
            random.shuffle(candidates)
            for doc in candidates:
                if doc.get("lock") or doc.get("done"):
                    continue  # the view lags behind the document: someone has it
                now = int(time.time())
                doc.update(lock=now, heartbeat=now, hostname=self.hostname, worker_id=self.worker_id, status="locked")
                doc["times"] = {**(doc.get("times") or {}), "locked": now}
                try:
                    doc["_rev"] = save_document(self.store.db, doc)
                except UpdateConflict:
                    self.report.conflicts += 1
                    continue
                self._current = doc  # from here on, a signal must release it
                return doc
        return None

    def owns(self, doc: dict | None) -> bool:
        return bool(doc) and doc.get("worker_id") == self.worker_id and bool(doc.get("lock")) and not doc.get("done")

    # --- saving ----------------------------------------------------------------

    def update_token(self, fields: dict, attachments: dict[str, bytes] | None = None, *,
                     times_key: str | None = None, then: Callable[[dict], object] | None = None) -> bool:
        """Merge ``fields`` into the server's current token and save, retrying on conflict.

        Returns False when the token is no longer ours (the orchestrator reset
        it and another worker took it): then nothing is written.
        """
        with self._doc_lock:
            token_id = self._current["_id"]
            for _ in range(20):
                doc = fetch_document(self.store.db, token_id)
                if doc is None:
                    log.warning("token %s was deleted while this worker held it", token_id)
                    return False
                if not self.owns(doc) and not (doc.get("lock") == 0 and doc.get("done") == 0):
                    log.warning("token %s is now held by %s; not overwriting it", token_id, doc.get("hostname"))
                    return False
                doc.update(fields)
                if times_key:
                    doc["times"] = {**(doc.get("times") or {}), times_key: int(time.time())}
                if attachments:
                    doc.setdefault("_attachments", {})
                    for name, data in attachments.items():
                        doc["_attachments"][name] = inline_attachment(data)
                if then:
                    then(doc)
                try:
                    doc["_rev"] = save_document(self.store.db, doc)
                except UpdateConflict:
                    continue  # someone else wrote in between: read theirs and merge again
                self._current = doc
                return True
        raise UpdateConflict(f"token {token_id} kept changing while saving this worker's result")

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_seconds):
            try:
                if not self.update_token({"heartbeat": int(time.time())}):
                    log.error("lost token %s to another worker; stopping its job", self._current["_id"])
                    self._kill_job()
                    return
            except CouchDBError as error:
                log.warning("heartbeat for %s failed: %s", self._current["_id"], error)

    # --- running ---------------------------------------------------------------

    def prepare(self, token: dict) -> Path:
        """A fresh work folder holding the token's attachments (logs excepted)."""
        self.root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"{token['_id']}-", dir=self.root))
        for name in token.get("_attachments") or {}:
            if is_log_attachment(name):  # a previous attempt's logs are not the job's input
                continue
            (workdir / attachment_filename(name)).write_bytes(self.store.get_attachment(token["_id"], name))
        return workdir

    def command_for(self, token: dict) -> str:
        command = self.command or token.get("command") or ((token.get("config.json") or {}).get("command"))
        if not command:
            raise CouchDBError(f"token {token['_id']} names no command and the worker was given none (--command)")
        return command

    def run_job(self, token: dict, workdir: Path) -> tuple[int, bytes, bytes]:
        """Run the job in its own process group; kill the group past the time limit."""
        stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            self._process = subprocess.Popen(
                ["/bin/bash", "-c", self.command_for(token)],
                cwd=workdir, env=job_environment(token, workdir), stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True, preexec_fn=_die_with_parent,
            )
            try:
                code = self._process.wait(timeout=self.max_token_seconds)
            except subprocess.TimeoutExpired:
                log.error("token %s exceeded max_token_seconds=%s; killing its job", token["_id"], self.max_token_seconds)
                self._kill_job()
                self._process.wait()
                code = TIMEOUT_EXIT
                err.write(f"\nlrt worker: killed after max_token_seconds={self.max_token_seconds}\n".encode())
            finally:
                self._process = None
        if code < 0:  # killed by a signal
            code = 128 - code
        if self._stopping:
            raise Stop()
        return code, _tail(stdout_path), _tail(stderr_path)

    def _kill_job(self) -> None:
        """SIGTERM to the job's whole process group, SIGKILL after a grace period.

        It never waits, so a signal handler may call it while the main thread
        is inside ``wait()``: waiting there too would deadlock on Popen's lock.
        """
        process = self._process
        if process is None:
            return
        _signal_group(process, signal.SIGTERM)
        timer = threading.Timer(KILL_GRACE_SECONDS, _signal_group, (process, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    def process(self, token: dict) -> int:
        self._current = token
        stop_heartbeat = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(stop_heartbeat,), daemon=True)
        workdir = None
        try:
            self.update_token({"status": "downloading"}, times_key="downloading")
            workdir = self.prepare(token)
            self.update_token({"status": "running"}, times_key="running")
            beat.start()
            code, stdout, stderr = self.run_job(self._current, workdir)
            stop_heartbeat.set()
            state = "done" if code == 0 else "error"
            fields = {"status": state, "output": code, "exit_code": code, "done": int(time.time())}
            retry = code != 0 and int(self._current.get("scrub_count") or 0) < self.max_scrub
            # A retry is recorded and reset in one save, so no other pilot
            # ever sees this token finished-with-error and concludes the run is over.
            def retry_later(doc: dict) -> None:
                reset_fields(doc)
                doc["last_exit_code"] = code

            then = retry_later if retry else None
            if self.update_token(fields, {"stdout.log": stdout, "stderr.log": stderr}, times_key=state, then=then):
                self.report.processed.append(token["_id"])
                if code:
                    self.report.failed.append(token["_id"])
            log.info("token %s finished with exit code %s%s", token["_id"], code, "; reset for a retry" if retry else "")
            return code
        except Stop:
            stop_heartbeat.set()
            self.release()
            raise
        finally:
            stop_heartbeat.set()
            if workdir and not self.keep_workdirs:
                shutil.rmtree(workdir, ignore_errors=True)

    def release(self) -> None:
        """Hand the current token back to ``todo`` (SIGTERM: the pilot is being stopped)."""
        if self._current is None:
            return
        token_id = self._current["_id"]
        released = self.update_token(
            {"lock": 0, "done": 0, "hostname": "", "worker_id": "", "status": "todo", "output": "", "exit_code": ""},
            times_key="released",
        )
        if released:
            self.report.released = token_id
            log.warning("released token %s back to todo", token_id)

    def _on_signal(self, signum, frame) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.warning("received %s; stopping", signal.Signals(signum).name)
        self._kill_job()
        if self._process is None:
            raise Stop()

    def _finished(self) -> bool:
        """Nothing left to claim now or later: no token is todo or locked.

        While others hold tokens, this pilot stays: a holder may die, and the
        stale lock it leaves is reset here once the lease is over.
        """
        if self.lease_seconds:
            self.store.reset_stale(self.lease_seconds)
        counts = self.store.counts()
        return counts["todo"] == 0 and counts["locked"] == 0

    def run(self, max_tokens: int | None = None) -> WorkerReport:
        """Process tokens until the view is empty (or ``max_tokens`` are done)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while max_tokens is None or len(self.report.processed) < max_tokens:
                token = self.claim()
                if token is None:
                    if not self.until_finished or self._finished():
                        break
                    time.sleep(self.poll_seconds)
                    continue
                try:
                    self.process(token)
                finally:
                    self._current = None
        except Stop:
            self.release()  # a signal between claim and process; no-op once process released it
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.report


def _die_with_parent() -> None:
    """In the job's process, before exec: be killed when the worker dies.

    A worker killed with SIGKILL cannot stop its job, and the job would go on
    running unrecorded while the token, reset after its lease, runs again
    elsewhere: the same work done twice. Linux only; elsewhere a no-op.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    # poll() first: once the job has been reaped its process group id may belong to someone else.
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass


def _tail(path: Path, limit: int = LOG_TAIL_BYTES) -> bytes:
    """The end of a log: a job that prints gigabytes must not make a token that big."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        if size > limit:
            file.seek(size - limit)
            return b"[... earlier output cut ...]\n" + file.read()
        return file.read()
