"""A Snakemake job as a PiCaS token, and what a token's state means for the job. Pure: no I/O.

A job's token id is deterministic: the token type, the workflow's scope, the rule (or group),
a digest of the job's identity (its rule and wildcards, and the files it makes) and the attempt.
So a rerun of Snakemake finds the token of a job it submitted before, and each retry of a job
(``--retries``) is a token of its own.

The token holds what a pilot needs and nothing secret:

* ``command``: ``cd <workflow folder> && <Snakemake's command for the job>``; first it checks that
  the pilot's environment has the variables the job needs, which travel by name only (``environment``);
* ``resources``: threads, and the job's numeric resources (``mem_mb``, ``runtime`` in minutes, ...);
* ``snakemake``: rule, wildcards, attempt, outputs, the folder: for people and the report;
* ``lrt_run``: the Snakemake run that watches it now (the ``by_run`` view's key); ``OBSID``: the scope.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from typing import Iterable, Mapping, Sequence

from lrt_workflow.token import modifiers
from lrt_workflow.token.model import new_token

#: How many output files a token lists (a job may make thousands).
OUTPUTS_LISTED = 20
#: How many lines of a failed job's stderr go into Snakemake's error message.
TAIL_LINES = 20
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def default_scope(folder: str) -> str:
    """The working folder's name and a digest of its absolute path: two workflows never share one."""
    path = os.path.abspath(folder)
    name = _UNSAFE.sub("-", os.path.basename(path)).strip("-.")[:40] or "workflow"
    return f"{name}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def identity(name: str, wildcards: Mapping, outputs: Iterable[str]) -> str:
    """What makes a job the same job in another run of the same workflow."""
    return json.dumps({"name": name, "wildcards": {str(k): str(v) for k, v in sorted(wildcards.items())},
                       "output": sorted(map(str, outputs))}, sort_keys=True)


def token_id(token_type: str, scope: str, name: str, job_identity: str, attempt: int) -> str:
    digest = hashlib.sha256(job_identity.encode()).hexdigest()[:12]
    return f"{token_type}_{scope}_{_UNSAFE.sub('-', name)[:40]}_{digest}_a{int(attempt)}"


def belongs(token_id_: str, token_type: str, scope: str) -> bool:
    """A token id this workflow's executor made (an external id from Snakemake's records may be another's)."""
    return token_id_.startswith(f"{token_type}_{scope}_")


#: Started first by every job: when the pilot dies (SIGKILL, a lost node), it kills the job's whole
#: process group. The pilot's own guard kills only the job's first process, and a Snakemake job is a
#: tree (bash, Snakemake, the rule's shell, its tools) that would otherwise run on, unwatched, while
#: its token, put back after the lease, runs again elsewhere.
#: It ends with the job's shell, however that ends (but SIGKILL, which the pilot's death brings anyway).
WATCHDOG = ('pilot=$PPID; (while kill -0 "$pilot" 2>/dev/null; do sleep 1; done; kill -KILL 0) '
            "</dev/null >/dev/null 2>&1 & watchdog=$!; trap 'kill \"$watchdog\" 2>/dev/null' EXIT")


def command(folder: str, exec_job: str, needed: Sequence[str] = ()) -> str:
    """The pilot's command: start the watchdog, check the environment, go to the workflow's folder, run the job."""
    checks = [f'{{ [ -n "${{{name}+x}}" ] || {{ echo "the job needs {name} in the pilot\'s environment" >&2; '
              "false; }; }" for name in needed]
    return "\n".join([WATCHDOG, " && ".join([*checks, f"cd {shlex.quote(os.path.abspath(folder))}", exec_job])])


def secrets_in(text: str, secrets: Mapping[str, str | None]) -> list[str]:
    """The names of the secrets whose values ``text`` holds (never the values)."""
    return sorted(name for name, value in secrets.items() if value and len(value) >= 4 and value in text)


def resources(threads: int, job_resources: Mapping) -> dict:
    """Threads and the numeric resources; Snakemake's internal ones (``_cores``, ``_nodes``) left out."""
    found = {"threads": int(threads)}
    for name, value in job_resources.items():
        if not str(name).startswith("_") and isinstance(value, (int, float)) and not isinstance(value, bool):
            found[str(name)] = value
    return found


def job_token(token_type: str, token_id_: str, *, scope: str, run: str, command_: str, needed: Sequence[str],
              resources_: Mapping, info: Mapping) -> dict:
    """A new token for a job."""
    outputs = list(info.get("output") or [])
    described = {**info, "output": outputs[:OUTPUTS_LISTED]}
    if len(outputs) > OUTPUTS_LISTED:
        described["outputs"] = len(outputs)
    doc = new_token(token_type, token_id_, {
        "OBSID": scope, "lrt_run": run, "command": command_, "environment": {"from_pilot": list(needed)},
        "resources": dict(resources_), "snakemake": described,
    })
    return modifiers.record(doc, "submitted", run=run)


# --- what a rerun finds -----------------------------------------------------------------------------------

ADOPT, RENEW = "adopt", "renew"


def on_rerun(doc: Mapping, named_by_snakemake: bool) -> str:
    """What to do with a job's token that is there already.

    * waiting or running: the job is under way; watch it (``adopt``), never start it twice;
    * done, and Snakemake's own record of the unfinished job names this token: it ended after
      Snakemake stopped watching; ``adopt`` it, its result is the job's;
    * otherwise (failed, cancelled, or done in an earlier run that Snakemake has since finished
      with, so now the job runs again on purpose: changed code, --forcerun): ``renew``.
    """
    state = modifiers.state(doc)
    if state in ("todo", "locked") or (state == "done" and named_by_snakemake):
        return ADOPT
    return RENEW


def adopt(doc: dict, run: str, new_command: str) -> dict:
    """The token is watched by ``run`` now. A token no pilot has claimed gets this run's command too."""
    doc["lrt_run"] = run
    if modifiers.state(doc) == "todo":
        doc["command"] = new_command
    return modifiers.record(doc, "adopted", run=run)


def renew(doc: dict, fresh: Mapping) -> dict:
    """Run the job again in the same token: back to ``todo`` (its history kept, a scrub counted), with
    the fields of the ``fresh`` token and without the old logs."""
    modifiers.reset(doc, drop_logs=True, event="resubmitted", run=fresh["lrt_run"])
    doc["scrub_count"] = 0  # a new submission: its lease resets count from zero (the history keeps all)
    for key in ("lrt_run", "command", "environment", "resources", "snakemake", "OBSID"):
        doc[key] = fresh[key]
    doc.pop("error_reason", None)  # of the last attempt, whose exit code stays as last_exit_code
    return doc


# --- what a status round finds ------------------------------------------------------------------------------

def row_value(doc: Mapping) -> list:
    """What the ``by_run`` view says of a token (`views.run_view`), from the token itself."""
    code = doc.get("exit_code") if doc.get("output") in ("", None) else doc.get("output")
    return [modifiers.state(doc), code, modifiers.last_sign_of_life(doc)]


def stale(row_value: Sequence, lease_seconds: float, now: float) -> bool:
    """A status row of a running token whose pilot has been silent for longer than the lease."""
    state, _, beat = (list(row_value) + [None, None, None])[:3]
    return state == "locked" and bool(beat) and beat <= now - lease_seconds


def failure_message(doc: Mapping, stderr: bytes | None) -> str:
    """Why the job failed, for Snakemake's error report: exit code, reason, host, and its stderr's last lines."""
    code = doc.get("exit_code") if doc.get("output") in ("", None) else doc.get("output")
    parts = [f"token {doc['_id']} ended in error (exit code {code})"]
    if doc.get("error_reason"):
        parts.append(f"reason: {doc['error_reason']}")
    host = doc.get("hostname") or next((e.get("host") for e in reversed(doc.get("history") or [])
                                         if e.get("host")), None)
    if host:
        parts.append(f"last pilot host: {host}")
    text = "; ".join(parts) + ". "
    lines = (stderr or b"").decode(errors="replace").rstrip().splitlines()[-TAIL_LINES:]
    if lines:
        text += f"The end of its stderr ({len(lines)} lines):\n" + "\n".join("    " + line for line in lines) + "\n"
    return text
