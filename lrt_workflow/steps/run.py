"""Running the workflow so that running it again always works.

A Snakemake killed with SIGKILL leaves its lock behind, and the next run
stops with a LockException until someone runs ``--unlock``. Here the next run
clears that lock itself, but only once it is sure that no live Snakemake
works in this folder: a lock a live run holds is never touched, and a
second run at the same time is refused with a message saying which process
holds the folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from lrt_workflow.errors import LrtError

class RunRefused(LrtError):
    """Another run of the workflow is active in this folder."""


def snakemake_processes(workdir: Path, exclude: set[int] = frozenset()) -> list[int]:
    """PIDs of live Snakemake processes whose working folder is ``workdir``."""
    workdir = workdir.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        is_snakemake = any(part.endswith(b"snakemake") for part in argv[:3]) or b"snakemake" in argv[1:3]
        if is_snakemake and cwd == workdir and state != "Z":
            found.append(int(entry.name))
    return found


def has_stale_lock(workdir: Path) -> bool:
    locks = workdir / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir())


def run(args: list[str], workdir: str | os.PathLike = ".") -> int:
    """Run Snakemake with ``args``, recovering from a killed run. Snakemake loads the workflow's
    default profile (profiles/default) by itself, whatever the arguments."""
    workdir = Path(workdir)
    command = [sys.executable, "-m", "snakemake", *args]
    others = snakemake_processes(workdir, exclude={os.getpid()})
    if others:
        raise RunRefused(
            f"another Snakemake (pid {', '.join(map(str, others))}) is running this workflow in {workdir.resolve()}; "
            "wait for it to finish, or stop it as Ctrl-C would (kill -INT <pid>: it cancels its jobs at once, "
            "where kill -TERM waits for them) and run again"
        )
    if has_stale_lock(workdir):
        print("lrt run: clearing the lock of an earlier run that was killed", file=sys.stderr)
        subprocess.run([*command, "--unlock"], cwd=workdir, check=True, capture_output=True)
    process = subprocess.Popen([*command, "--rerun-incomplete"], cwd=workdir)

    def forward(signum, frame):
        process.send_signal(signum)

    # Ctrl-C reaches Snakemake from the terminal already, being in this process group: passing it on
    # too would interrupt Snakemake's own clean-up. A SIGTERM is for this process alone: pass it on.
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
