"""A job's process on the pilot's machine: its environment, its process group, its logs.

The job never sees the worker's credentials, dies with its worker, and is
stopped as a whole process group, children included.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
from pathlib import Path

from lrt_workflow.archive import attachment_filename

LOG_TAIL_BYTES = 1 << 20
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
