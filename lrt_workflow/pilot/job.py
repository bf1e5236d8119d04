"""A job's process on the pilot's machine: its environment, its process group, its logs.

The job never sees the worker's credentials, dies with its worker, and is
stopped as a whole process group, children included.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from lrt_workflow.archive import attachment_filename
from lrt_workflow.pilot.reaper import Reaper
from lrt_workflow.token.modifiers import is_log_attachment

log = logging.getLogger("lrt_workflow.pilot.worker")

LOG_TAIL_BYTES = 1 << 20
#: How often a running job is looked at: its clock, its lease and the stop flag.
WATCH_SECONDS = 0.2
KILL_GRACE_SECONDS = 10
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
TIMEOUT_EXIT = 124  # what coreutils' timeout reports, so it reads the same
UPLOAD_FAILED_EXIT = 75  # EX_TEMPFAIL of <sysexits.h>: the job ran, its results could not be stored
#: Never handed to a job: the worker's own credentials.
SECRET_ENVIRONMENT = ("PICAS_PASSWORD", "PICAS_USER", "PICAS_URL", "PICASRC")  # a URL may hold user:password@
#: Batch-system job ids recorded on the tokens a pilot claims: {token field: environment variable}.
PILOT_JOB_IDS = {"slurm_job_id": "SLURM_JOB_ID"}


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


def write_inputs(workdir: Path, token: dict, fetched: dict[str, bytes], download: Callable[[str, str], bytes]
                 ) -> list[str]:
    """Write the token's attachments (logs excepted) into ``workdir``; returns their file names.
    They came with the claim (``fetched``); one that did not is downloaded now."""
    inputs = []
    for name in token.get("_attachments") or {}:
        if is_log_attachment(name):  # a previous attempt's logs are not the job's input
            continue
        inputs.append(attachment_filename(name))
        (workdir / inputs[-1]).write_bytes(fetched[name] if name in fetched else download(token["_id"], name))
    return inputs


def empty(folder: Path) -> None:
    """Remove everything in ``folder``, keeping the folder."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def pilot_job_ids(environ: dict | None = None) -> dict:
    """The batch system's id of the job this pilot runs in, for the tokens it claims."""
    environ = os.environ if environ is None else environ
    return {name: environ.get(variable) or None for name, variable in PILOT_JOB_IDS.items()}


def die_with_parent() -> None:
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


@functools.lru_cache(maxsize=1)
def _setpriv() -> str | None:
    """util-linux's ``setpriv`` when it knows ``--pdeathsig`` (2.33 and later), else None."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return None
    try:
        usage = subprocess.run([setpriv, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return setpriv if "--pdeathsig" in usage else None


def job_process(command: str, **popen) -> subprocess.Popen:
    """``bash -c command`` in a session of its own, killed by the kernel when the worker dies.

    Through ``setpriv --pdeathsig KILL`` where util-linux has it: then Python can start the
    job with vfork, a few milliseconds quicker per job than a fork that runs `die_with_parent`
    in the child, which is the fallback."""
    setpriv = _setpriv()
    if setpriv:
        return subprocess.Popen([setpriv, "--pdeathsig", "KILL", "--", "/bin/bash", "-c", command],
                                start_new_session=True, **popen)
    return subprocess.Popen(["/bin/bash", "-c", command], start_new_session=True, preexec_fn=die_with_parent,
                            **popen)


def signal_group(process: subprocess.Popen, sig: int) -> None:
    # poll() first: once the job has been reaped its process group id may belong to someone else.
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass


def tail(path: Path, limit: int = LOG_TAIL_BYTES) -> bytes:
    """The end of a log: a job that prints gigabytes must not make a token that big."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        if size > limit:
            file.seek(size - limit)
            return b"[... earlier output cut ...]\n" + file.read()
        return file.read()


class JobRun:
    """One job: ``bash -c command`` in ``workdir``, in its own process group, watched until it ends.

    ``watch(job)`` is called before the job starts waiting and every `WATCH_SECONDS`
    while it runs; when it returns a reason, the job's whole process group is stopped
    (SIGTERM, SIGKILL after a grace period), as it is after ``max_seconds``. The end of the job is noticed at once
    (a pidfd), not at the next look.
    """

    def __init__(self, command: str, token: dict, workdir: Path, watch: Callable[["JobRun"], str | None], *,
                 max_seconds: float | None = None, kill_grace: float = KILL_GRACE_SECONDS,
                 reaper: Reaper | None = None):
        self.command = command
        self.max_seconds = max_seconds
        self.token = token
        self.workdir = workdir
        self.watch = watch
        self.kill_grace = kill_grace
        self.reaper = reaper  # told of the job's process group, to kill it if the worker is SIGKILLed
        self.started = time.time()  # unix time the job started, for its history
        self._began = time.monotonic()
        self.process: subprocess.Popen | None = None
        self.stopped_for: str | None = None
        self.killed = False  # this worker signalled the job
        self.status_saved = False  # its running status was saved, or tried
        self.status_recorded = False  # ... and saved
        self.ended = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._began

    def run(self) -> tuple[int | None, bytes, bytes]:
        """Returns (exit code, stdout tail, stderr tail); the exit code is None when the job was
        stopped for a reason other than its time limit (``stopped_for`` says which)."""
        stdout_path, stderr_path = self.workdir / "stdout.log", self.workdir / "stderr.log"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            if self.reaper:
                self.reaper.start()
            self.started, self._began = time.time(), time.monotonic()
            self.process = job_process(self.command, cwd=self.workdir, env=job_environment(self.token, self.workdir),
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            if self.reaper:
                self.reaper.watch(self.process.pid)
            try:
                code = self._wait(err)
            finally:
                if self.reaper:  # at once: once the job's leader is reaped, its group id may be reused
                    self.reaper.forget(self.process.pid)
            self.ended = True
        if self.stopped_for is None and self.killed:  # the signal handler stopped it while we waited
            self.stopped_for = "signal"
        if self.stopped_for == "time limit":
            code = TIMEOUT_EXIT
        elif self.stopped_for:
            code = None
        elif code < 0:  # killed by a signal from outside
            code = 128 - code
        return code, tail(stdout_path), tail(stderr_path)

    def _wait(self, err) -> int:
        pidfd = _pidfd(self.process.pid)
        try:
            while True:
                if self.stopped_for is None and (reason := self._reason_to_stop()):
                    self.stopped_for = reason
                    if reason == "time limit":
                        log.error("token %s exceeded max_token_seconds=%s; killing its job", self.token["_id"],
                                  self.max_seconds)
                        err.write(f"\nlrt worker: killed after max_token_seconds={self.max_seconds}\n".encode())
                        err.flush()
                    elif reason != "signal":
                        log.error("token %s: %s; stopping its job", self.token["_id"], reason)
                    self.kill()
                code = self._exit_code(pidfd)
                if code is not None:
                    return code
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _reason_to_stop(self) -> str | None:
        if self.max_seconds and self.elapsed > self.max_seconds:
            return "time limit"
        return self.watch(self)

    def _exit_code(self, pidfd: int | None) -> int | None:
        """The job's exit code once it has ended, waiting at most `WATCH_SECONDS` for it."""
        if pidfd is not None:
            if not select.select([pidfd], [], [], WATCH_SECONDS)[0]:
                return None
            return self.process.wait()
        try:
            return self.process.wait(timeout=WATCH_SECONDS)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGTERM to the job's whole process group, SIGKILL after the grace period.

        It never waits, so the signal handler may call it while the main thread
        waits for the job: waiting there too would deadlock on Popen's lock.
        """
        process = self.process
        if process is None:
            return
        self.killed = True
        signal_group(process, signal.SIGTERM)
        timer = threading.Timer(self.kill_grace, signal_group, (process, signal.SIGKILL))
        timer.daemon = True
        timer.start()


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when the process ends (Linux 5.3 and later), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None
