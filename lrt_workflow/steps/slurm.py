"""Runs whose pilots are SLURM jobs (``--profile profiles/slurm``): they end, they never hang.

The Snakefile calls `activate` when a run starts. It does nothing unless the
executor is snakemake-executor-plugin-slurm; then it mends three gaps of that
plugin (2.8) and of Snakemake:

* **A job whose state cannot be learned fails the run, never hangs it.** The
  plugin forgets the jobs of a cycle in which its status command (``squeue`` or
  ``sacct``) failed ``status_attempts`` times, and it asks forever about a job
  the command no longer lists (``squeue`` forgets a job MinJobAge seconds after
  it ended; ``sacct`` fails on clusters without slurmdbd). Snakemake then waits
  for those jobs for ever, silently. Here a job whose state stays unknown for
  ``LRT_SLURM_UNKNOWN_SECONDS`` (default 120) is scancelled, in case it still
  runs, and reported failed with its SLURM job id, the reason and its log; a
  shorter outage is ridden out.
* **Prompt status checks.** The plugin lets the pause between two checks grow
  to 180 s, ignoring ``--seconds-between-status-checks``; here that setting is
  the longest pause, and the end of a run or a stop does not wait out a pause.
* **SIGTERM stops the run as Ctrl-C does.** Snakemake answers SIGTERM by
  waiting for its running jobs, and pilots run for hours. Here SIGTERM, like
  SIGINT, scancels the run's SLURM jobs; and after either, Snakemake waits
  (up to `CANCEL_WAIT_SECONDS`) until the cancelled jobs have ended, so that
  their pilots have given their tokens back before the run stops its embedded
  CouchDB server. The rerun resumes.

These wrap methods of the plugin's Executor and its ``query_job_status``. The
plugin's version is pinned in setup.cfg (the ``slurm`` extra) to the releases
this was tested with, on a real cluster, in tests/test_slurm.py.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

#: How long a job's state may stay unknown before the run gives up on it.
UNKNOWN_SECONDS_VARIABLE = "LRT_SLURM_UNKNOWN_SECONDS"
DEFAULT_UNKNOWN_SECONDS = 120.0
#: After a stop, how long to wait for the cancelled jobs to end (SLURM's KillWait is 30 s by default).
CANCEL_WAIT_SECONDS = 60.0
#: SLURM states of a job that has not ended yet.
UNFINISHED = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "RESIZING", "REQUEUED",
              "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED", "PREEMPTED"}


def activate(workflow) -> bool:
    """Guard this run if its executor is SLURM's (call it when the run starts, from the main thread).
    Returns whether it did."""
    plugin = getattr(workflow, "executor_plugin", None)
    if plugin is None or plugin.name != "slurm" or not workflow.is_main_process:
        return False
    import snakemake_executor_plugin_slurm

    install(snakemake_executor_plugin_slurm, unknown_seconds())
    # The scheduler set its own SIGTERM handler ("finish the running jobs first") before the run started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return True


def unknown_seconds(environ=os.environ) -> float:
    text = environ.get(UNKNOWN_SECONDS_VARIABLE, "")
    try:
        value = float(text) if text else DEFAULT_UNKNOWN_SECONDS
    except ValueError:
        value = -1
    if not value > 0:
        sys.exit(f"lrt: error: {UNKNOWN_SECONDS_VARIABLE}={text!r}: expected a number of seconds above 0")
    return value


@dataclass
class Answer:
    """What the status command said last: job id -> state, or None and why it gave no answer."""

    command: str = ""
    states: dict | None = None
    failure: str = "no status query ran"

    def knows(self, job_id: str) -> bool:
        return self.states is not None and any(i in self.states for i in (job_id, job_id.split("_")[0]))

    def why_unknown(self) -> str:
        name = self.command.split()[0] if self.command else "the status command"
        if self.states is None:
            return f"`{name}` failed: {self.failure}"
        return f"`{name}` no longer lists it"


@dataclass
class Guard:
    """Per executor: since when each job's state has been unknown."""

    limit: float
    unknown_since: dict = field(default_factory=dict)
    blind: bool = False


#: The status command's last answer. One executor per process, and its checks run one at a time.
_last = Answer()


class _Recorder:
    """The plugin's logger, noting what the plugin logs at debug level: the only place it says why a
    status query failed."""

    def __init__(self, logger):
        self.logger = logger
        self.messages: list[str] = []

    def debug(self, msg, *args, **kwargs):
        self.messages.append(str(msg))
        self.logger.debug(msg, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.logger, name)


def install(slurm, limit: float, *, clock=time.monotonic, scancel=None) -> None:
    """Wrap the plugin module ``slurm`` (once; a second call only changes the limit). ``scancel(job_id)``
    cancels a job given up on and returns None, or why it could not."""
    scancel = scancel or _scancel
    executor = slurm.Executor
    if getattr(executor, "_lrt_guard_limit", None) is not None:
        executor._lrt_guard_limit = limit
        return
    executor._lrt_guard_limit = limit
    query, check, cancel = slurm.query_job_status, executor.check_active_jobs, executor.cancel_jobs

    @functools.wraps(query)
    async def query_job_status(command, logger):
        global _last
        recorder = _Recorder(logger)
        states, duration = await query(command, recorder)
        reason = recorder.messages[-1].strip() if recorder.messages else "no error message"
        _last = Answer(command, states, reason.replace("SLURM query command failed: ", "").strip())
        return states, duration

    @functools.wraps(check)
    async def check_active_jobs(self, active_jobs):
        global _last
        guard = self.__dict__.setdefault("_lrt_guard", Guard(executor._lrt_guard_limit))
        _last = Answer()
        still = {id(job) async for job in check(self, active_jobs)}
        answer, now = _last, clock()
        if active_jobs and not answer.command:  # a plugin that no longer queries through query_job_status
            if not guard.blind:
                print("lrt: warning: this version of the SLURM executor plugin cannot be watched by "
                      "lrt_workflow's guard; a job whose state it cannot learn may hang the run", file=sys.stderr)
            guard.blind = True
            for job in active_jobs:
                if id(job) in still:
                    yield job
            return
        for job in active_jobs:
            job_id = job.external_jobid
            if answer.knows(job_id):  # the plugin judged it: still running (yielded) or reported
                guard.unknown_since.pop(job_id, None)
                if id(job) in still:
                    yield job
                continue
            since = guard.unknown_since.setdefault(job_id, now)
            if now - since < guard.limit:
                yield job  # kept, also when the plugin dropped it: ask again next time
                continue
            guard.unknown_since.pop(job_id, None)
            give_up(self, job, f"{answer.why_unknown()} for {now - since:.0f} s", guard.limit, scancel)
        # The plugin grows its pause by 10 s per check up to 180 s; honour --seconds-between-status-checks.
        longest = self.workflow.remote_execution_settings.seconds_between_status_checks
        if self.next_seconds_between_status_checks > longest:
            self.next_seconds_between_status_checks = longest

    async def sleep(self):
        # In slices: shutdown() waits for this thread, and must not wait out a whole pause.
        end = time.monotonic() + self.next_seconds_between_status_checks
        while self.wait and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(0.5, left))

    @functools.wraps(cancel)
    def cancel_jobs(self, active_jobs):
        cancel(self, active_jobs)
        wait_for_end([job.external_jobid for job in active_jobs if job.external_jobid], CANCEL_WAIT_SECONDS)

    slurm.query_job_status = query_job_status
    executor.check_active_jobs = check_active_jobs
    executor.sleep = sleep
    executor.cancel_jobs = cancel_jobs


def give_up(executor, job, why: str, limit: float, scancel) -> None:
    """Cancel a job whose state stayed unknown, and report it failed: the run fails, naming it."""
    job_id = job.external_jobid
    problem = scancel(job_id)
    logfile = (job.aux or {}).get("slurm_logfile")
    executor.report_job_error(
        job,
        msg=(f"SLURM job {job_id}: its state could not be learned ({why}; the limit is {limit:g} s, "
             f"{UNKNOWN_SECONDS_VARIABLE}). "
             + (f"scancel {job_id} failed too ({problem}): check it with squeue. " if problem else
                "It was cancelled in case it still ran; its pilot gives back the token it held. ")
             + "Without slurmdbd use slurm-status-command: squeue (profiles/slurm), and make sure MinJobAge "
             "(scontrol show config) is well above seconds-between-status-checks; then run the workflow again. "),
        aux_logs=[str(logfile)] if logfile else [],
    )


def _scancel(job_id: str) -> str | None:
    try:
        done = subprocess.run(["scancel", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit status {done.returncode}")


def wait_for_end(job_ids: list[str], timeout: float, poll: float = 0.5) -> list[str]:
    """Wait until squeue shows none of ``job_ids`` unfinished; returns those still unfinished at the end."""
    deadline = time.monotonic() + timeout
    left = list(job_ids)
    announced = False
    while left:
        found = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i|%T", "--jobs", ",".join(left)],
                               capture_output=True, text=True, timeout=60)
        if found.returncode != 0 and "Invalid job id" not in found.stderr:
            print(f"lrt: could not learn whether the cancelled SLURM jobs ended: {found.stderr.strip()}",
                  file=sys.stderr)
            return left
        states = dict(line.split("|", 1) for line in found.stdout.split() if "|" in line)
        left = [job_id for job_id in left if states.get(job_id) in UNFINISHED]
        if not left or time.monotonic() > deadline:
            break
        if not announced:
            print(f"lrt: waiting for the cancelled SLURM jobs {', '.join(left)} to end, so that their pilots "
                  "give their tokens back", file=sys.stderr)
            announced = True
        time.sleep(poll)
    if left:
        print(f"lrt: SLURM jobs {', '.join(left)} had not ended after {timeout:g} s; a token one of their pilots "
              "still holds is reset after its lease", file=sys.stderr)
    return left
