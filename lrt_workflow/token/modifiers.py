"""Every change of a token's state, in one place. Pure: each function edits a document dict in place.

A token moves ``todo -> locked -> done | error``, and back to ``todo`` when
it is reset. The pilot, the orchestrator and the classic API all change
tokens through these functions, so the fields that the views, the picas
client's workers and the report read are always written the same way.

Besides the classic ``times`` (the last time each status was reached), every
change appends one event to ``history``, so a token's retries, leases that
ran out and releases stay visible after the fact. An event is
``{"event": name, "time": unix seconds, ...details}``.

Leases: a worker that holds a token writes ``heartbeat`` (unix seconds) while
its job runs. A token is stale when its last sign of life, the heartbeat or,
before the first one, the claim (``lock``), is older than the lease. Tokens
locked by the picas client's workers carry no heartbeat, so for them the
claim time is the only sign of life: the old rule.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Mapping

#: Attachments a worker leaves behind; a reset may drop them, an archive keeps them.
LOG_SUFFIXES = (".log", ".out", ".err")
#: The exit code recorded for a token whose job never reported one (its lease ran out too often).
NO_EXIT_CODE = -1
#: Where a pilot uploaded the job's results: the field GRID_LRT's launcher wrote, which old tools read.
RESULTS = "Results_location"
#: A digest of the token's spec: the fields its configuration gave it (template, command, fields).
SPEC = "lrt_spec"
#: The fields the token's lifecycle owns: identity, state, history, and what pilots record.
#: Every other field is the token's spec.
LIFECYCLE_FIELDS = frozenset({
    "_id", "_rev", "_attachments", "_deleted", "type", "lock", "done", "hostname", "worker_id", "heartbeat",
    "status", "output", "exit_code", "times", "history", "scrub_count", "last_exit_code", "error_reason",
    RESULTS, SPEC, "slurm_job_id",
})


def _now(now: float | None) -> float:
    return now if now is not None else time.time()


def record(doc: dict, event: str, now: float | None = None, **details) -> dict:
    """Note ``event`` in the token's ``times`` (latest per name, whole seconds, as GRID_LRT's) and
    ``history`` (all of them, to the millisecond, so even short jobs have a duration)."""
    when = _now(now)
    times = doc.get("times") if isinstance(doc.get("times"), dict) else {}
    times[event] = int(when)
    doc["times"] = times
    history = doc.get("history") if isinstance(doc.get("history"), list) else []
    history.append({"event": event, "time": round(when, 3),
                    **{k: v for k, v in details.items() if v not in (None, "")}})
    doc["history"] = history
    return doc


def state(doc: Mapping) -> str:
    """``todo``, ``locked``, ``done`` or ``error``: the same judgement as the views' (see `views`)."""
    if (doc.get("done") or 0) > 0:
        code = doc.get("exit_code") if doc.get("output") in ("", None) else doc.get("output")
        try:
            ok = int(code) == 0
        except (TypeError, ValueError):
            ok = False
        return "done" if ok and doc.get("status") != "error" else "error"
    if (doc.get("lock") or 0) > 0:
        return "error" if doc.get("status") == "error" else "locked"
    return "todo"


def is_free(doc: Mapping) -> bool:
    """Nobody holds it and it has not finished: a worker may claim it."""
    return not doc.get("lock") and not doc.get("done")


def holds(doc: Mapping, worker_id: str) -> bool:
    """``worker_id`` holds the token and has not finished it."""
    return bool(doc.get("lock")) and not doc.get("done") and doc.get("worker_id") == worker_id


def last_sign_of_life(doc: Mapping) -> float:
    """The heartbeat or, before the first one, the claim. 0 for a token nobody holds."""
    return max(doc.get("lock") or 0, doc.get("heartbeat") or 0)


def is_stale(doc: Mapping, cutoff: float) -> bool:
    """Locked, unfinished, and silent since before ``cutoff``."""
    return bool(doc.get("lock")) and not doc.get("done") and last_sign_of_life(doc) <= cutoff


def is_log_attachment(name: str) -> bool:
    return name.endswith(LOG_SUFFIXES)


def spec_of(doc: Mapping) -> dict:
    return {key: value for key, value in doc.items() if key not in LIFECYCLE_FIELDS}


def spec_digest(doc: Mapping) -> str:
    text = json.dumps(spec_of(doc), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_spec_digest(doc: dict) -> dict:
    """Note on a new token the digest of its spec, so a rerun can tell whether its configuration changed."""
    doc[SPEC] = spec_digest(doc)
    return doc


def respec(doc: dict, new: Mapping, now: float | None = None) -> dict:
    """Give a token that is not done the spec of ``new`` (its configuration changed): fields that
    left the configuration go, the others take the new values. Its state and history stay."""
    for key in spec_of(doc):
        doc.pop(key)
    doc.update(spec_of(new))
    doc[SPEC] = spec_digest(new)
    return record(doc, "updated", now)


def claim(doc: dict, *, worker_id: str, hostname: str, now: float | None = None, **pilot) -> dict:
    """Lock the token for one worker. ``pilot`` may name the batch job it runs in (``slurm_job_id=...``)."""
    when = _now(now)
    doc.update(lock=int(when), heartbeat=int(when), hostname=hostname, worker_id=worker_id, status="locked")
    for key, value in pilot.items():
        if value:
            doc[key] = value
        else:
            doc.pop(key, None)  # a job id of an earlier attempt must not stick to this one
    return record(doc, "locked", when, worker=worker_id, host=hostname, **pilot)


def set_status(doc: dict, status: str, now: float | None = None) -> dict:
    """A step of the work (``downloading``, ``running``, ...) while the worker holds the token."""
    doc["status"] = status
    return record(doc, status, now)


def beat(doc: dict, now: float | None = None) -> dict:
    """Renew the lease. Not an event: it would grow the history by one line per beat."""
    doc["heartbeat"] = int(_now(now))
    return doc


def finish(doc: dict, exit_code: int, now: float | None = None, *, results: str | None = None) -> dict:
    """The job ended with ``exit_code``: ``done`` when 0, else ``error``; ``results`` is where they went."""
    when = _now(now)
    state = "done" if exit_code == 0 else "error"
    doc.update(status=state, output=exit_code, exit_code=exit_code, done=int(when))
    if results:
        doc[RESULTS] = results
    return record(doc, state, when, exit_code=exit_code)


def reset(doc: dict, now: float | None = None, *, drop_logs: bool = False, event: str = "reset", **details) -> dict:
    """Put the token back in ``todo`` (a "scrub"): ``scrub_count`` grows by one."""
    if doc.get("done") and doc.get("output") not in ("", None):
        doc["last_exit_code"] = doc["output"]
    doc.update(lock=0, done=0, hostname="", worker_id="", output="", exit_code="", status="todo")
    doc.pop(RESULTS, None)  # the next attempt makes new ones
    doc["scrub_count"] = int(doc.get("scrub_count") or 0) + 1
    if drop_logs and doc.get("_attachments"):
        doc["_attachments"] = {n: a for n, a in doc["_attachments"].items() if not is_log_attachment(n)}
    return record(doc, event, now, **details)


def release(doc: dict, now: float | None = None, *, reason: str = "") -> dict:
    """The worker gives the token back unfinished (it was stopped): ``todo``, no scrub counted."""
    doc.update(lock=0, done=0, hostname="", worker_id="", output="", exit_code="", status="todo")
    return record(doc, "released", now, reason=reason)


def fail(doc: dict, reason: str, now: float | None = None, *, event: str = "failed") -> dict:
    """Give up on the token: finished in ``error`` with ``reason`` and no exit code of a job."""
    when = _now(now)
    doc.update(status="error", output=NO_EXIT_CODE, exit_code=NO_EXIT_CODE, done=int(when), error_reason=reason)
    doc["lock"] = doc.get("lock") or int(when)  # finished tokens keep a claim time, as the views expect
    return record(doc, event, when, reason=reason)


def cancel(doc: dict, reason: str, now: float | None = None) -> dict:
    """Withdraw an unfinished token: it fails with ``reason``, so no pilot claims it any more, and the
    pilot running its job finds at its next heartbeat that it no longer holds the token, and stops the job."""
    return fail(doc, reason, now, event="cancelled")


def retry_or_keep(doc: dict, max_scrub: int | None, now: float | None = None, *, drop_logs: bool = False) -> bool:
    """After a failed job: reset for another try unless it was reset ``max_scrub`` times already."""
    if max_scrub is not None and int(doc.get("scrub_count") or 0) >= max_scrub:
        return False
    reset(doc, now, drop_logs=drop_logs)
    return True


def conclude(doc: dict, exit_code: int, max_scrub: int | None = 0, now: float | None = None,
             *, results: str | None = None) -> bool:
    """Record the end of the job; a failed one is reset for another try in the same change unless it
    was reset ``max_scrub`` times already. Returns True when it was reset for a retry.

    One change, so no other pilot ever sees the token finished with an error
    while a retry is still to come, and concludes that the run is over."""
    finish(doc, exit_code, now, results=results)
    return exit_code != 0 and retry_or_keep(doc, max_scrub, now)


def expire(doc: dict, lease_seconds: float, max_scrub: int | None, now: float | None = None,
           *, drop_logs: bool = True) -> dict:
    """The holder went silent for longer than the lease (its worker died): reset it, or fail it when
    it was reset ``max_scrub`` times already, so a token that kills its workers cannot loop forever."""
    scrubs = int(doc.get("scrub_count") or 0)
    silent = int(_now(now) - last_sign_of_life(doc))
    if max_scrub is not None and scrubs >= max_scrub:
        return fail(doc, f"its worker ({doc.get('hostname') or 'unknown host'}) went silent for {silent} s, "
                         f"longer than the lease of {lease_seconds:g} s, after {scrubs} resets", now)
    return reset(doc, now, drop_logs=drop_logs, event="expired", host=doc.get("hostname"), silent_seconds=silent)
