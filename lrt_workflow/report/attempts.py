"""What each token went through, rebuilt from the token document alone. Pure: no I/O.

An *attempt* is one claim of a token by a pilot: it starts at a ``locked``
event (or at ``running`` when the claim was not recorded) and ends at the
next ``done``, ``error``, ``released``, ``expired``, ``reset`` or ``failed``.
Tokens written before ``history`` existed (or by other tools) have only
``times``, ``lock`` and ``done``, which tell at most the last attempt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Mapping, Sequence

#: How an attempt ended, in the order of the legend, with its colour and its words.
OUTCOMES = {
    "done": ("#2e8b57", "done"),
    "error": ("#c0392b", "failed (job exit code not 0)"),
    "failed": ("#7b1d1d", "given up (lease ran out too often)"),
    "expired": ("#8e6c8a", "lease ran out (pilot died)"),
    "released": ("#e08e0b", "released (pilot stopped)"),
    "reset": ("#4a7ab0", "reset while running"),
    "running": ("#5dade2", "still running when reported"),
    "lost": ("#9aa5b1", "end not recorded"),
}
#: Events that end an open attempt, and the outcome they give it.
ENDINGS = {"done": "done", "error": "error", "released": "released", "expired": "expired",
           "reset": "reset", "failed": "failed"}
STATES = ("todo", "locked", "done", "error")


@dataclass
class Attempt:
    """One claim of a token: from ``start`` (claim) to ``end`` (None while unfinished)."""

    number: int
    start: float
    run_start: float | None = None
    end: float | None = None
    outcome: str = "running"
    exit_code: object = None
    worker: str = ""
    host: str = ""
    slurm_job_id: str = ""
    reason: str = ""

    @property
    def duration(self) -> float | None:
        """Seconds from the job's start (the claim if unknown) to the end."""
        if self.end is None:
            return None
        return max(0.0, self.end - (self.run_start if self.run_start is not None else self.start))

    @property
    def coarse(self) -> bool:
        """Both ends are whole seconds: a 0 here means "under a second", not "no time"."""
        begin = self.run_start if self.run_start is not None else self.start
        return self.end is not None and float(begin).is_integer() and float(self.end).is_integer()


@dataclass
class TokenView:
    """One token as the report shows it."""

    token_id: str
    state: str
    attempts: list[Attempt] = field(default_factory=list)
    exit_code: object = None
    scrub_count: int = 0
    host: str = ""
    worker: str = ""
    slurm_job_id: str = ""
    start_sb: str = ""
    links: int | None = None
    from_history: bool = False
    given_up: bool = False
    reason: str = ""
    logs: dict[str, bytes] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.state == "error"

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def first_start(self) -> float | None:
        return self.attempts[0].start if self.attempts else None


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def from_history(history: Sequence[Mapping]) -> tuple[list[Attempt], bool, str]:
    """(attempts, given up, reason) from a token's ``history`` events."""
    events = [e for e in history if isinstance(e, Mapping) and _number(e.get("time")) is not None]
    events = sorted(events, key=lambda e: _number(e["time"]))  # stable: equal times keep their order
    attempts: list[Attempt] = []
    current: Attempt | None = None
    given_up, reason = False, ""
    for event in events:
        name, when = str(event.get("event", "")), _number(event["time"])
        if name == "locked" or (name == "running" and current is None):
            if current is not None:  # a claim without an end: the end was never recorded
                current.end, current.outcome = when, "lost"
            current = Attempt(number=len(attempts) + 1, start=when)
            current.run_start = when if name == "running" else None
            attempts.append(current)
        elif name == "running":
            current.run_start = when
        elif name in ENDINGS and current is not None:
            current.end, current.outcome = when, ENDINGS[name]
            if event.get("exit_code") not in (None, ""):
                current.exit_code = event["exit_code"]
            current.reason = str(event.get("reason") or "")
            current = None
        if name == "failed":
            given_up, reason = True, str(event.get("reason") or "")
        if current is not None:
            current.worker = str(event.get("worker") or current.worker)
            current.host = str(event.get("host") or current.host)
            current.slurm_job_id = str(event.get("slurm_job_id") or current.slurm_job_id)
    return attempts, given_up, reason


def from_times(doc: Mapping) -> list[Attempt]:
    """At most the last attempt, from ``times``, ``lock`` and ``done`` (tokens without ``history``)."""
    times = doc.get("times") if isinstance(doc.get("times"), Mapping) else {}
    claimed = _number(times.get("locked")) or _number(doc.get("lock"))
    running = _number(times.get("running"))
    start = claimed or running
    if start is None:
        return []
    attempt = Attempt(number=1, start=start, run_start=running if running and running >= start else None,
                      worker=str(doc.get("worker_id") or ""), host=str(doc.get("hostname") or ""),
                      slurm_job_id=str(doc.get("slurm_job_id") or ""))
    ends = [(t, name) for name in ("done", "error", "failed", "expired", "released", "reset")
            if (t := _number(times.get(name))) is not None and t >= start]
    done_at = _number(doc.get("done"))
    if not ends and done_at and done_at >= start:
        ends = [(done_at, state_of(doc))]
    if ends:
        rank = {"done": 0, "error": 1, "failed": 2, "expired": 3, "released": 4, "reset": 5}
        # the first ending after the last claim; an error and its retry's reset share a second
        attempt.end, attempt.outcome = min(ends, key=lambda end: (end[0], rank.get(end[1], 9)))
    elif state_of(doc) != "locked":
        attempt.outcome = "lost"
    else:
        attempt.outcome = "running"
    if attempt.outcome in ("done", "error"):
        code = _exit_code(doc)
        attempt.exit_code = code if code not in (None, "") else doc.get("last_exit_code")
    return [attempt]


def _exit_code(doc: Mapping):
    code = doc.get("exit_code")
    return doc.get("output") if code in (None, "") else code


def state_of(doc: Mapping) -> str:
    """todo, locked, done or error, as the views count it."""
    status = str(doc.get("status") or "")
    if not doc.get("lock"):
        return "todo"
    if not doc.get("done"):
        return "locked"
    if status in ("done", "error"):
        return status
    return "done" if str(_exit_code(doc)) == "0" else "error"


def count_links(files: Mapping[str, bytes]) -> int | None:
    """The number of archive links in the token's ``srm.txt`` attachment, when it has one."""
    data = files.get("srm.txt")
    if not isinstance(data, (bytes, bytearray)):
        return None
    return sum(1 for line in bytes(data).decode("utf-8", "replace").splitlines() if line.strip())


def view(doc: Mapping, files: Mapping[str, bytes] | None = None) -> TokenView:
    """Everything the report shows of one token document and its attachments."""
    files = files or {}
    history = doc.get("history")
    if isinstance(history, list) and history:
        attempts, given_up, reason = from_history(history)
        recorded = True
    else:
        attempts, given_up, reason, recorded = from_times(doc), False, "", False
    last = attempts[-1] if attempts else None
    if last is not None and last.end is None and state_of(doc) != "locked":
        last.outcome = "lost"  # the history stops at a claim, yet nobody holds the token
    code = _exit_code(doc)
    if code in (None, "") and last is not None:
        code = last.exit_code
    return TokenView(
        token_id=str(doc.get("_id", "?")),
        state=state_of(doc),
        attempts=attempts,
        exit_code=code if code not in (None, "") else None,
        scrub_count=int(_number(doc.get("scrub_count")) or 0),
        host=str(doc.get("hostname") or (last.host if last else "")),
        worker=str(doc.get("worker_id") or (last.worker if last else "")),
        slurm_job_id=str(doc.get("slurm_job_id") or (last.slurm_job_id if last else "")),
        start_sb=str(doc.get("STARTSB", "")),
        links=count_links(files),
        from_history=recorded,
        given_up=given_up or doc.get("status") == "failed",
        reason=reason or str(doc.get("error_reason") or ""),
        logs={name: bytes(files[name]) for name in ("stdout.log", "stderr.log")
              if isinstance(files.get(name), (bytes, bytearray))},
    )


# --- words for numbers ----------------------------------------------------------------


def duration_text(seconds: float | None, coarse: bool = False) -> str:
    """"850 ms", "12.4 s", "3 min 05 s", "2 h 10 min"; "under 1 s" for 0 s measured in whole seconds."""
    if seconds is None:
        return "–"
    if seconds < 1:
        if coarse:
            return "under 1 s"
        return "under 1 ms" if seconds < 0.001 else f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.0f} s" if coarse else f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(round(seconds) // 60, 60)
    return f"{hours} h {rest:02d} min"


def clock(when: float | None) -> str:
    """A unix time as UTC wall-clock time, to the second."""
    if when is None:
        return "–"
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def tail_lines(data: bytes, lines: int = 20) -> str:
    """The last ``lines`` lines of a log, decoded (bad bytes replaced), not yet escaped."""
    text = data.decode("utf-8", "replace").rstrip("\n")
    return "\n".join(text.splitlines()[-lines:])
