"""The pilot worker: take tokens from a view until none are left, and run each one's job.

It follows the PiCaS worker contract and avoids the three defects of the
``picas`` client's ``RunActor``:

* **No double claims.** A token is claimed only if the document itself, read
  after the view, is still free, and the claim is saved with the revision
  that check read; a 409 means another worker won.
* **No dropped results.** When a save meets a conflict, the token is re-read
  and, if it is still this worker's, the change is applied to the new
  revision and saved again. A token another worker has taken is never
  overwritten.
* **Time limits that stop work.** The job runs in its own process group, and
  ``max_token_seconds`` kills the whole group.

**Leases.** While a job runs, a heartbeat renews the token's lease every
``heartbeat_seconds`` (a quarter of the lease by default). The orchestrator
resets a token only when its last sign of life is older than the lease, so a
job may run for days under a lease of minutes. If the heartbeat cannot be
saved for half the lease, the worker stops the job and releases the token:
a job never runs on after its lease may have been given to another pilot.

**Stopping.** SIGTERM or SIGINT (a batch system ending the pilot) stops the
job and releases its token at once. The signal handler only sets a flag and
signals the job's process group; the main loop acts on the flag at safe
points, so a signal can never interrupt a request or a fork half-way.
"""

from __future__ import annotations

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

from lrt_workflow.archive import attachment_filename
from lrt_workflow.couchdb.client import CouchDBError, DatabaseMissing, UpdateConflict
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.errors import ConfigError
from lrt_workflow.pilot.job import (
    TIMEOUT_EXIT,
    UPLOAD_FAILED_EXIT,
    die_with_parent,
    job_environment,
    pilot_job_ids,
    signal_group,
    tail,
)
from lrt_workflow.pilot.reaper import Reaper
from lrt_workflow.pilot.upload import UploadError, upload
from lrt_workflow.storage import StorageError
from lrt_workflow.token import modifiers
from lrt_workflow.token.model import inline_attachment

log = logging.getLogger(__name__)

CLAIM_WINDOW = 25
CLAIM_ATTEMPTS = 10
SAVE_ATTEMPTS = 20
KILL_GRACE_SECONDS = 10
#: How often the main thread looks at the job's clock, its lease and the stop flag.
WATCH_SECONDS = 0.2


@dataclass
class WorkerReport:
    processed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    conflicts: int = 0
    released: str | None = None

    def __str__(self) -> str:
        n = len(self.processed)
        return (f"processed {n} token{'s' if n != 1 else ''} ({len(self.failed)} failed), "
                f"{self.conflicts} claim conflicts")


class LeaseLost(CouchDBError):
    """The worker could not renew its token's lease, so it stopped the job."""


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
        lease_seconds: float = 3600.0,
        heartbeat_seconds: float | None = None,
        keep_workdirs: bool = False,
        max_scrub: int = 0,
        until_finished: bool = False,
        poll_seconds: float = 5.0,
        idle_seconds: float = 0.0,
    ):
        heartbeat_seconds = heartbeat_seconds or lease_seconds / 4
        if heartbeat_seconds > lease_seconds / 2:
            raise ConfigError(
                f"a heartbeat every {heartbeat_seconds:g} s cannot keep a lease of {lease_seconds:g} s: "
                "the heartbeat must come at least twice per lease (the default is a quarter of the lease)"
            )
        self.store = store
        self.command = command
        self.view = view
        self.root = Path(workdir or Path(tempfile.gettempdir()) / "lrt-worker")
        self.max_token_seconds = max_token_seconds
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.keep_workdirs = keep_workdirs
        self.max_scrub = max_scrub
        self.until_finished = until_finished
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds  # keep looking for tokens this long after the last one
        self.base = Path.cwd()  # where plain upload paths start
        self.hostname = socket.gethostname()
        self.worker_id = f"{self.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pilot = pilot_job_ids()
        self.report = WorkerReport()
        self._token: dict | None = None  # the token held, as last read or saved
        self._process: subprocess.Popen | None = None
        self._reaper = Reaper()  # kills the job's children too if this worker is SIGKILLed
        self._doc_lock = threading.RLock()  # the heartbeat and the main loop both save the token
        self._stop = threading.Event()  # set by SIGTERM / SIGINT
        self._last_beat = 0.0  # time.monotonic() of the last lease renewal
        self._lost: str | None = None  # why the lease is gone, once it is
        self._killed = False  # this worker signalled the running job

    # --- claiming --------------------------------------------------------------

    def claim(self) -> dict | None:
        """Lock one free token, or return None when the view has none left."""
        for _ in range(CLAIM_ATTEMPTS):
            ids = self.store.ids(self.view, limit=CLAIM_WINDOW)
            if not ids:
                return None
            random.shuffle(ids)
            for token_id in ids:
                doc = self.store.get(token_id)
                # The document, not the view row, decides: another worker may
                # have locked it after the view was read.
                if doc is None or not modifiers.is_free(doc):
                    continue
                modifiers.claim(doc, worker_id=self.worker_id, hostname=self.hostname, **self.pilot)
                try:
                    doc["_rev"] = self.store.save(doc)  # with the revision just checked: a 409 means we lost
                except UpdateConflict:
                    self.report.conflicts += 1
                    continue
                self._token = doc
                self._last_beat = time.monotonic()
                self._lost = None
                return doc
        return None

    # --- saving ----------------------------------------------------------------

    def save(self, change: Callable[[dict], object], *, allow_free: bool = False) -> bool:
        """Apply ``change`` to the token and save it, merging with whatever was written meanwhile.

        On a conflict the token is re-read; if it is still this worker's (or,
        with ``allow_free``, nobody's), ``change`` is applied to the new
        revision. Returns False, writing nothing, when the token is gone or
        another worker holds it.
        """
        with self._doc_lock:
            doc = self._token
            token_id = doc["_id"]
            for _ in range(SAVE_ATTEMPTS):
                change(doc)
                try:
                    doc["_rev"] = self.store.save(doc)
                except UpdateConflict:
                    doc = self.store.get(token_id)
                    if doc is None:
                        log.warning("token %s was deleted while this worker held it", token_id)
                        return False
                    if not (modifiers.holds(doc, self.worker_id) or (allow_free and modifiers.is_free(doc))):
                        log.warning("token %s is now held by %s; not overwriting it", token_id,
                                    doc.get("worker_id") or doc.get("hostname") or "nobody")
                        return False
                    continue
                self._token = doc
                return True
        raise UpdateConflict(f"token {token_id} kept changing while this worker saved it")

    def _heartbeat(self, stop: threading.Event, token_id: str) -> None:
        while not stop.wait(self.heartbeat_seconds):
            with self._doc_lock:
                if stop.is_set():  # the job ended while this beat waited for the result to be saved
                    return
                try:
                    if not self.save(modifiers.beat):
                        self._lost = "another worker holds the token now"
                        return
                    self._last_beat = time.monotonic()
                except CouchDBError as error:
                    log.warning("heartbeat for %s failed: %s", token_id, error)

    def _lease_problem(self) -> str | None:
        """Why the job must stop for want of a lease, if it must."""
        if self._lost:
            return self._lost
        silent = time.monotonic() - self._last_beat
        if silent > self.lease_seconds / 2:
            return f"no heartbeat could be saved for {silent:.0f} s, half the lease of {self.lease_seconds:g} s"
        return None

    # --- running ---------------------------------------------------------------

    def prepare(self, token: dict) -> tuple[Path, list[str]]:
        """A fresh work folder holding the token's attachments (logs excepted), and their file names."""
        self.root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"{token['_id']}-", dir=self.root))
        inputs = []
        for name in token.get("_attachments") or {}:
            if modifiers.is_log_attachment(name):  # a previous attempt's logs are not the job's input
                continue
            inputs.append(attachment_filename(name))
            (workdir / inputs[-1]).write_bytes(self.store.get_attachment(token["_id"], name))
        return workdir, inputs

    def command_for(self, token: dict) -> str:
        command = self.command or token.get("command") or ((token.get("config.json") or {}).get("command"))
        if not command:
            raise ConfigError(f"token {token['_id']} names no command and the worker was given none (--command)")
        return command

    def run_job(self, token: dict, command: str, workdir: Path) -> tuple[int | None, bytes, bytes]:
        """Run the job in its own process group and watch it.

        Returns (exit code, stdout tail, stderr tail); the exit code is None
        when the job was stopped for a signal or a lost lease rather than ending.
        """
        stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
        started = time.monotonic()
        stopped_for = None
        self._killed = False
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            self._process = subprocess.Popen(
                ["/bin/bash", "-c", command],
                cwd=workdir, env=job_environment(token, workdir), stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True, preexec_fn=die_with_parent,
            )
            self._reaper.watch(self._process.pid)
            try:
                while True:
                    if self._stop.is_set() and stopped_for is None:  # also a signal that came during Popen
                        stopped_for = "signal"
                        self._kill_job()
                    try:
                        code = self._process.wait(timeout=WATCH_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    if stopped_for:
                        continue
                    if self.max_token_seconds and time.monotonic() - started > self.max_token_seconds:
                        stopped_for = "time limit"
                        log.error("token %s exceeded max_token_seconds=%s; killing its job",
                                  token["_id"], self.max_token_seconds)
                        err.write(f"\nlrt worker: killed after max_token_seconds={self.max_token_seconds}\n".encode())
                        err.flush()
                        self._kill_job()
                    elif problem := self._lease_problem():
                        stopped_for = f"lost lease: {problem}"
                        log.error("token %s: %s; stopping its job", token["_id"], problem)
                        self._kill_job()
            finally:
                self._reaper.forget(self._process.pid)
                self._process = None
        if stopped_for is None and self._killed:  # the signal handler stopped it while we waited
            stopped_for = "signal"
        if stopped_for == "time limit":
            code = TIMEOUT_EXIT
        elif stopped_for:
            code = None
        elif code < 0:  # killed by a signal from outside
            code = 128 - code
        return code, tail(stdout_path), tail(stderr_path)

    def _kill_job(self) -> None:
        """SIGTERM to the job's whole process group, SIGKILL after a grace period.

        It never waits, so the signal handler may call it while the main
        thread is inside ``wait()``: waiting there too would deadlock on Popen's lock.
        """
        process = self._process
        if process is None:
            return
        self._killed = True
        signal_group(process, signal.SIGTERM)
        grace = min(KILL_GRACE_SECONDS, self.lease_seconds / 4)
        timer = threading.Timer(grace, signal_group, (process, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    def process(self, token: dict) -> int | None:
        """Run the claimed token's job and record the result. None when it was stopped instead."""
        self._token = token
        stop_heartbeat = threading.Event()
        workdir = None
        try:
            try:
                command = self.command_for(token)
            except ConfigError as error:
                reason = str(error)
                self.save(lambda doc: modifiers.fail(doc, reason))
                raise
            workdir, inputs = self.prepare(token)
            if self._stop.is_set():
                self.release("the pilot was stopped")
                return None
            if not self.save(lambda doc: modifiers.set_status(doc, "running")):
                return None
            threading.Thread(target=self._heartbeat, args=(stop_heartbeat, token["_id"]), daemon=True).start()
            code, stdout, stderr = self.run_job(self._token, command, workdir)
            if code is None:
                stop_heartbeat.set()
                return self._stopped(token["_id"])
            results = None
            if code == 0:  # the heartbeat goes on while the results are copied, which may take long
                try:
                    results = upload(self._token, workdir, inputs, base=self.base)
                except (UploadError, StorageError) as error:
                    code = UPLOAD_FAILED_EXIT
                    stderr += f"\nlrt worker: {error}\n".encode()
                    log.error("token %s: %s", token["_id"], error)
            stop_heartbeat.set()
            retry = False

            def result(doc: dict) -> None:
                nonlocal retry
                doc["_attachments"] = {**(doc.get("_attachments") or {}),
                                       "stdout.log": inline_attachment(stdout),
                                       "stderr.log": inline_attachment(stderr)}
                retry = modifiers.conclude(doc, code, self.max_scrub, results=results)

            if self.save(result, allow_free=True):
                self.report.processed.append(token["_id"])
                if code:
                    self.report.failed.append(token["_id"])
            log.info("token %s finished with exit code %s%s", token["_id"], code, "; reset for a retry" if retry else "")
            return code
        finally:
            stop_heartbeat.set()
            if workdir and not self.keep_workdirs:
                shutil.rmtree(workdir, ignore_errors=True)

    def _stopped(self, token_id: str) -> None:
        """The job was stopped before it ended: give the token back, and say why."""
        if self._stop.is_set():
            self.release("the pilot was stopped")
            return None
        if self._lost:  # another worker has it: nothing to give back, and this pilot can go on
            log.warning("token %s: %s; moving on", token_id, self._lost)
            return None
        problem = self._lease_problem()
        self.release("its lease could not be renewed")
        raise LeaseLost(f"stopped the job of token {token_id}: {problem}")

    def release(self, reason: str) -> None:
        """Hand the held token back to ``todo`` unfinished, without counting a scrub."""
        if self._token is None:
            return
        token_id = self._token["_id"]
        if self.save(lambda doc: modifiers.release(doc, reason=reason)):
            self.report.released = token_id
            log.warning("released token %s back to todo (%s)", token_id, reason)

    def _on_signal(self, signum, frame) -> None:
        if not self._stop.is_set():
            log.warning("received %s; stopping", signal.Signals(signum).name)
        self._stop.set()
        self._kill_job()

    def _finished(self) -> bool:
        """Nothing left to claim now or later: no token is todo or locked.

        While others hold tokens, this pilot stays: a holder may die, and the
        stale lock it leaves is reset here once the lease is over.
        """
        self.store.reset_stale(self.lease_seconds, max_scrub=self.max_scrub)
        counts = self.store.counts()
        return counts["todo"] == 0 and counts["locked"] == 0

    def run(self, max_tokens: int | None = None) -> WorkerReport:
        """Process tokens until the view is empty (or ``max_tokens`` are done, or a signal comes)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        busy = time.monotonic()  # when this pilot last had a token
        try:
            while not self._stop.is_set() and (max_tokens is None or len(self.report.processed) < max_tokens):
                try:
                    token = self.claim()
                except DatabaseMissing:  # no design document yet: a pilot that waits for tokens waits for it too
                    if not self.idle_seconds:
                        raise
                    token = None
                if token is None:
                    waiting = time.monotonic() - busy < self.idle_seconds  # more tokens may come (Snakemake)
                    if not waiting and (not self.until_finished or self._finished()):
                        break
                    self._stop.wait(self.poll_seconds)
                    continue
                try:
                    self.process(token)
                finally:
                    self._token = None
                    busy = time.monotonic()
        finally:
            self._reaper.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.report


