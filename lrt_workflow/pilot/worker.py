"""The pilot worker: take tokens from a view until none are left, and run each one's job.

It follows the PiCaS worker contract and avoids the three defects of the
``picas`` client's ``RunActor``:

* **No double claims.** A token is claimed only if the document itself, read
  after the view, is still free, and the claim is saved with the revision
  that check read; a 409 means another worker won (see `holdings`).
* **No dropped results.** When a save meets a conflict, the token is re-read
  and, if it is still this worker's, the change is applied to the new
  revision and saved again. A token another worker has taken is never
  overwritten.
* **Time limits that stop work.** The job runs in its own process group, and
  ``max_token_seconds`` kills the whole group.

**Few requests per token.** While jobs are short, one claim round locks as
many tokens as this pilot runs in about `CLAIM_AHEAD_SECONDS` (at most
`MAX_CLAIM_AHEAD`), in three requests, their attachments included. A job's
``running`` status is saved only once it has run `RUNNING_AFTER_SECONDS`; a
shorter job records it together with its result, at the time it started. So
a short job costs its token one write, the result, and that write is made
when the job ends, before the pilot moves on: a pilot killed after a job
never loses its result. Long jobs claim one token at a time, as before, and
a job that turns out long gives back the tokens claimed after it at once, so
no other pilot waits for them.

**Leases.** A heartbeat renews the lease of every token this worker holds once
it has gone ``heartbeat_seconds`` (a quarter of the lease by default) without
renewal. The orchestrator resets a token only when its last sign of life is
older than the lease, so a job may run for days under a lease of minutes. If
the running token's lease cannot be renewed for half the lease, the worker
stops the job and releases the token: a job never runs on after its lease may
have been given to another pilot.

**Stopping.** SIGTERM or SIGINT (a batch system ending the pilot) stops the
job and releases its token, and those claimed after it, at once. The signal
handler only sets a flag and signals the job's process group; the main loop
acts on the flag at safe points, so a signal can never interrupt a request
or a fork half-way.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lrt_workflow.couchdb.client import CouchDBError, DatabaseMissing
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.errors import ConfigError
from lrt_workflow.pilot.holdings import Holdings
from lrt_workflow.pilot.job import (  # noqa: F401  (TIMEOUT_EXIT: imported from here too)
    KILL_GRACE_SECONDS,
    TIMEOUT_EXIT,
    UPLOAD_FAILED_EXIT,
    JobRun,
    empty,
    pilot_job_ids,
    write_inputs,
)
from lrt_workflow.pilot.reaper import Reaper
from lrt_workflow.pilot.upload import UploadError, upload
from lrt_workflow.storage import StorageError
from lrt_workflow.token import modifiers, views
from lrt_workflow.token.model import inline_attachment
from lrt_workflow.words import counted

log = logging.getLogger(__name__)

#: At most this many tokens are claimed in one round, and only while the jobs are short:
MAX_CLAIM_AHEAD = 16
#: a round claims as many tokens as this pilot's recent jobs take about this long to run. A job
#: that runs longer than this gives back the tokens claimed after it.
CLAIM_AHEAD_SECONDS = 2.0
#: A job that has run this long has its ``running`` status saved; a shorter one records it with its result.
RUNNING_AFTER_SECONDS = 1.0


@dataclass
class WorkerReport:
    processed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    conflicts: int = 0
    released: str | None = None
    requests: int = 0  # HTTP requests this worker made while it ran, what its tokens cost the server

    def __str__(self) -> str:
        return (f"processed {counted(len(self.processed), 'token')} ({len(self.failed)} failed), "
                f"{counted(self.conflicts, 'claim conflict')}, {counted(self.requests, 'request')}")


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
        self.held = Holdings(store, self.worker_id, self.hostname, self.pilot)
        self._running: str | None = None  # the token whose job runs now
        self._job: JobRun | None = None
        self._stop = threading.Event()  # set by SIGTERM / SIGINT
        self.job_seconds: float | None = None  # recent jobs' duration, claim to result (a moving average)
        self._since = None  # where the changes feed starts, while waiting for other pilots
        self._wake = threading.Event()  # a job started: the keeper has new duties
        self._reaper = Reaper()  # kills the jobs' children too if this worker is SIGKILLed
        self._requests = itertools.count(1)
        self._folder: Path | None = None  # the work folder of every job, unless keep_workdirs

    # --- claiming and saving -----------------------------------------------------

    def claim(self, n: int = 1) -> list[dict]:
        """Lock up to ``n`` free tokens in one round (see `holdings`); [] when the view has none left."""
        try:
            return self.held.claim(self.view, n)
        finally:
            self.report.conflicts = self.held.conflicts

    def claim_size(self, left: int | None = None) -> int:
        """How many tokens the next round claims: 1 until a job has been timed, then as many as
        this pilot runs in `CLAIM_AHEAD_SECONDS`, at most `MAX_CLAIM_AHEAD` (and ``left``)."""
        n = 1 if self.job_seconds is None else int(CLAIM_AHEAD_SECONDS / max(self.job_seconds, 1e-3))
        return max(1, min(n, MAX_CLAIM_AHEAD, left if left is not None else n))

    def save(self, change: Callable[[dict], object], *, allow_free: bool = False) -> bool:
        """Apply ``change`` to the running token and save it (see `Holdings.save`)."""
        return self.held.save(self._running, change, allow_free=allow_free)

    def _keeper(self, stop: threading.Event) -> None:
        """The thread that keeps the held tokens' leases, and saves what a running job needs
        saved while it runs, so the main thread never waits for the server during a job."""
        while not stop.is_set():
            self._wake.wait(self._next_duty_in())
            self._wake.clear()
            if stop.is_set():
                return
            job = self._job
            if job and job.elapsed >= RUNNING_AFTER_SECONDS and not job.status_saved:
                self._save_running(job)
            if job and job.elapsed >= CLAIM_AHEAD_SECONDS and self.held.queue:
                self._release_queue("its pilot is busy with a long job")
            self.held.renew_due(self.heartbeat_seconds)

    def _next_duty_in(self) -> float:
        wait = self.held.next_renewal_in(self.heartbeat_seconds)
        job = self._job
        if job and not job.status_saved:
            wait = min(wait, RUNNING_AFTER_SECONDS - job.elapsed)
        if job and self.held.queue:
            wait = min(wait, CLAIM_AHEAD_SECONDS - job.elapsed)
        return max(0.01, wait)

    def _save_running(self, job: JobRun) -> None:
        """The job has run long enough for its ``running`` status to be worth a write (with a heartbeat)."""
        token_id = job.token["_id"]
        with self.held.lock:
            if job.status_saved or job.ended or job is not self._job or token_id not in self.held:
                return
            job.status_saved = True
            try:
                if self.held.save(token_id, lambda doc: modifiers.beat(modifiers.set_status(doc, "running",
                                                                                            job.started))):
                    job.status_recorded = True
                    self.held.renewed[token_id] = time.monotonic()
            except CouchDBError as error:  # the result records it instead
                log.warning("token %s: could not save its running status: %s", token_id, error)

    def _lease_problem(self) -> str | None:
        """Why the running job must stop for want of a lease, if it must."""
        if self._running in self.held.lost:
            return self.held.lost[self._running]
        silent = self.held.silent_for(self._running)
        if silent > self.lease_seconds / 2:
            return f"no heartbeat could be saved for {silent:.0f} s, half the lease of {self.lease_seconds:g} s"
        return None

    # --- running -----------------------------------------------------------------

    def prepare(self, token: dict) -> tuple[Path, list[str]]:
        """An empty work folder holding the token's attachments (logs excepted), and their file names."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.keep_workdirs:
            workdir = Path(tempfile.mkdtemp(prefix=f"{token['_id']}-", dir=self.root))
        else:  # one folder for all this pilot's jobs, emptied after each: a new folder costs a journaled rmdir
            self._folder = self._folder or Path(tempfile.mkdtemp(prefix="pilot-", dir=self.root))
            workdir = self._folder
        inputs = write_inputs(workdir, token, self.held.inputs.pop(token["_id"], {}), self.store.get_attachment)
        return workdir, inputs

    def command_for(self, token: dict) -> str:
        command = self.command or token.get("command") or ((token.get("config.json") or {}).get("command"))
        if not command:
            raise ConfigError(f"token {token['_id']} names no command and the worker was given none (--command)")
        return command

    def _watch(self, job: JobRun) -> str | None:
        """Called while the job runs: a reason to stop it, if there is one. It reads flags only."""
        if self._stop.is_set():
            return "signal"
        if problem := self._lease_problem():
            return f"lost lease: {problem}"
        return None

    def process(self, token: dict) -> int | None:
        """Run the claimed token's job and record the result. None when it was stopped instead."""
        token_id = token["_id"]
        self._running = token_id
        begun = time.monotonic()
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
                self._release_all("the pilot was stopped")
                return None
            self._job = JobRun(command, token, workdir, self._watch, max_seconds=self.max_token_seconds,
                               kill_grace=min(KILL_GRACE_SECONDS, self.lease_seconds / 4), reaper=self._reaper)
            self._wake.set()  # the keeper plans the job's status save and the queue's release
            code, stdout, stderr = self._job.run()
            if code is None:
                return self._stopped(token_id, self._job.stopped_for)
            results = None
            if code == 0:  # the heartbeat goes on while the results are copied, which may take long
                try:
                    results = upload(token, workdir, inputs, base=self.base)
                except (UploadError, StorageError) as error:
                    code = UPLOAD_FAILED_EXIT
                    stderr += f"\nlrt worker: {error}\n".encode()
                    log.error("token %s: %s", token_id, error)
            retry = False
            job = self._job

            def result(doc: dict) -> None:
                nonlocal retry
                if not job.status_recorded:  # a short job: its start is recorded with its end
                    modifiers.set_status(doc, "running", job.started)
                doc["_attachments"] = {**(doc.get("_attachments") or {}),
                                       "stdout.log": inline_attachment(stdout),
                                       "stderr.log": inline_attachment(stderr)}
                retry = modifiers.conclude(doc, code, self.max_scrub, results=results)

            # Saved now, before the pilot runs anything else: a pilot killed after this job never loses it.
            if self.save(result, allow_free=True):
                self.report.processed.append(token_id)
                if code:
                    self.report.failed.append(token_id)
            log.info("token %s finished with exit code %s%s", token_id, code, "; reset for a retry" if retry else "")
            took = time.monotonic() - begun
            self.job_seconds = took if self.job_seconds is None else (self.job_seconds + took) / 2
            return code
        finally:
            self.held.forget(token_id)
            self._running, self._job = None, None
            if workdir and not self.keep_workdirs:
                empty(workdir)

    def _stopped(self, token_id: str, why: str) -> None:
        """The job was stopped before it ended: give the token back, and say why."""
        if self._stop.is_set():
            self._release_all("the pilot was stopped")
            return None
        if token_id in self.held.lost:  # another worker has it: nothing to give back, and this pilot can go on
            log.warning("token %s: %s; moving on", token_id, self.held.lost[token_id])
            return None
        problem = self._lease_problem() or why
        self.release("its lease could not be renewed")
        raise LeaseLost(f"stopped the job of token {token_id}: {problem}")

    def release(self, reason: str) -> None:
        """Hand the running token back to ``todo`` unfinished, without counting a scrub."""
        if self._running and self.held.release([self._running], reason):
            self.report.released = self._running

    def _release_queue(self, reason: str) -> None:
        """Give back the tokens claimed but not started, so other pilots can run them now."""
        try:
            released = self.held.release(list(self.held.queue), reason)
            if released and self._stop.is_set() and not self.report.released:
                self.report.released = released[0]
        except CouchDBError as error:  # their leases will run out, and the orchestrator resets them
            log.warning("could not give back the tokens this pilot has not started: %s", error)
            for token_id in list(self.held.queue):
                self.held.forget(token_id)

    def _release_all(self, reason: str) -> None:
        """The pilot stops: give back the running token and those queued behind it."""
        queued = list(self.held.queue)
        released = self.held.release(([self._running] if self._running else []) + queued, reason)
        if released:
            self.report.released = self._running if self._running in released else released[0]

    def _on_signal(self, signum, frame) -> None:
        if not self._stop.is_set():
            log.warning("received %s; stopping", signal.Signals(signum).name)
        self._stop.set()
        if self._job:
            self._job.kill()

    def _finished(self) -> bool:
        """Nothing left to claim now or later: no token is todo or locked.

        While others hold tokens, this pilot stays: a holder may die, and the
        stale lock it leaves is reset here once the lease is over.
        """
        self._since = self.store.update_seq()
        self.store.reset_stale(self.lease_seconds, max_scrub=self.max_scrub)
        counts = self.store.counts()
        return counts["todo"] == 0 and counts["locked"] == 0

    def _idle(self) -> None:
        """Wait until one of the step's tokens finishes or is free again, ``poll_seconds`` pass or
        a signal comes: one long request on the changes feed, not polling."""
        try:
            if self._since is None:  # a pilot waiting for tokens to come (idle_seconds) has not asked yet
                self._since = self.store.update_seq()
            # On from the change that woke it: a later wait must not wake again for the same one.
            self._since = self.store.follow(self._since, self.poll_seconds, match=views.FINISHED_OR_FREE,
                                            stop=self._stop.is_set)[1]
        except CouchDBError as error:
            log.debug("no changes feed (%s); waiting %s s", error, self.poll_seconds)
            self._stop.wait(self.poll_seconds)

    def run(self, max_tokens: int | None = None) -> WorkerReport:
        """Process tokens until the view is empty (or ``max_tokens`` are done, or a signal comes)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        hooks = self.store.db.r_session.hooks.setdefault("response", [])
        hooks.append(self._count_request)
        stop_keeper = threading.Event()
        threading.Thread(target=self._keeper, args=(stop_keeper,), daemon=True).start()
        busy = time.monotonic()  # when this pilot last had a token
        try:
            while not self._stop.is_set() and (max_tokens is None or len(self.report.processed) < max_tokens):
                token = self.held.next_queued(self.lease_seconds)
                if token is None:
                    left = None if max_tokens is None else max_tokens - len(self.report.processed)
                    try:
                        self.claim(self.claim_size(left))
                    except DatabaseMissing:  # no design document yet: a pilot that waits for tokens waits for it too
                        if not self.idle_seconds:
                            raise
                    token = self.held.next_queued(self.lease_seconds)
                if token is None:
                    waiting = time.monotonic() - busy < self.idle_seconds  # more tokens may come (Snakemake)
                    if not waiting and (not self.until_finished or self._finished()):
                        break
                    self._idle()
                    continue
                try:
                    self.process(token)
                finally:
                    busy = time.monotonic()
        finally:
            stop_keeper.set()
            self._wake.set()
            if self.held.queue:
                self._release_queue("the pilot was stopped" if self._stop.is_set() else
                                    "the pilot ended before it ran them")
            self._reaper.close()
            if self._folder:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            hooks.remove(self._count_request)
        return self.report

    def _count_request(self, response, *args, **kwargs):
        self.report.requests = next(self._requests)  # itertools.count: safe from both threads
        return response
