"""Kill a worker's jobs, children included, once the worker is gone, however it went.

PR_SET_PDEATHSIG (`job.die_with_parent`) reaches only the job's own process: a
job script's children would go on running, unrecorded, after a SIGKILLed worker,
while its token is reset and run again elsewhere. Nothing in a SIGKILLed process
runs, so the killing is left to a small process of its own that each worker
starts with its first job. It reads the process groups of the running jobs from
a pipe that only the worker holds open. When the pipe closes, which the kernel
does for any death, it kills every group still listed.
"""

from __future__ import annotations

import subprocess
import sys
import threading

# Standard library only, under -I -S: the reaper must start quickly and must not see the user's path.
_REAPER = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    sign, group = line.split()
    (groups.add if sign == "+" else groups.discard)(int(group))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""


class Reaper:
    """The process that outlives a worker long enough to kill its jobs' process groups."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the reaper now, if it is not running: called before a job starts, so that telling it
        of the job right after is one write to a pipe, not a process start the job could outrun."""
        with self._lock:
            if self._process is None:
                # A session of its own: a Ctrl-C for the worker's terminal must not stop it first.
                self._process = subprocess.Popen([sys.executable, "-I", "-S", "-c", _REAPER], stdin=subprocess.PIPE,
                                                 stdout=subprocess.DEVNULL, start_new_session=True)

    def _tell(self, line: str) -> None:
        self.start()
        with self._lock:
            if self._process is None:
                return
            try:
                self._process.stdin.write(line.encode())
                self._process.stdin.flush()
            except OSError:  # the reaper itself was killed: the next job starts a new one
                self._process = None

    def watch(self, group: int) -> None:
        """A job started in process group ``group``: kill it if the worker dies before it ends."""
        self._tell(f"+ {group}\n")

    def forget(self, group: int) -> None:
        """The job of ``group`` has ended: told at once, because once its leader is reaped the id may be reused."""
        self._tell(f"- {group}\n")

    def close(self) -> None:
        """The worker is done and no job is running: let the reaper go."""
        with self._lock:
            if self._process is not None:
                self._process.stdin.close()
                self._process.wait()
                self._process = None
