"""Steps 6-7: local pilots that process a step's tokens, and the wait until the step is complete.

With ``pilots.launcher: none``, pilots started elsewhere (a cluster, the
grid) do the work and only the wait runs here.

A step is complete when nothing is left to do or running, its done fraction
reaches ``wait.success_fraction``, and every done token's results exist. A
missing result sends its token back to ``todo``. When the wait fails, it
removes the reports of the step's local pilots, so that the rerun starts
pilots again and they finish the job (after ``lrt reset --view error``, say).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Mapping

from lrt_workflow import storage
from lrt_workflow.couchdb.client import ServerUnreachable
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.errors import LrtError, ServerError
from lrt_workflow.files import read_json, write_atomic, write_json
from lrt_workflow.pilot import Worker
from lrt_workflow.steps import store_for
from lrt_workflow.steps.tokens import job_command
from lrt_workflow.token import modifiers
from lrt_workflow.token.views import FINISHED, STATES

log = logging.getLogger("lrt_workflow")

#: How many results are looked up at once; each remote one is a gfal-stat.
RESULT_CHECKS_AT_ONCE = 8
#: Failed tokens whose stderr tail a failure message shows.
TAILS_SHOWN = 3
TAIL_LINES = 5


class WaitFailed(LrtError):
    """The step did not complete: too few tokens done, results missing, or the deadline passed."""


class Progress:
    """Counts with a rate and an estimate of the time left, from the counts seen since it began."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.first: tuple[float, int] | None = None

    def line(self, counts: Mapping) -> str:
        finished = counts["done"] + counts["error"]
        now = self.clock()
        if self.first is None:
            self.first = (now, finished)
        text = (f"{counts['done']}/{counts['total']} done, {counts['error']} failed, {counts['locked']} running, "
                f"{counts['todo']} to do")
        elapsed, gained = now - self.first[0], finished - self.first[1]
        left = counts["todo"] + counts["locked"]
        if gained > 0 and elapsed > 0:
            rate = gained / elapsed
            text += f"; {rate * 60:.1f} tokens/min, about {_duration(left / rate)} left" if left else \
                f"; {rate * 60:.1f} tokens/min"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def report_progress(store: TokenStore, every: float, stop: threading.Event, what: str) -> threading.Thread:
    """Log the step's progress every ``every`` seconds until ``stop`` is set, in a thread of its own."""
    def loop() -> None:
        progress = Progress()
        while not stop.wait(every):
            try:
                log.info("%s: %s", what, progress.line(store.counts()))
            except LrtError as error:  # progress is a courtesy: never let it stop the pilot
                log.warning("%s: no progress this time: %s", what, error)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def pilot_step(settings: Mapping, obsid: str | None, out: str | os.PathLike,
               workdir: str | os.PathLike | None = None, *, index: int = 0) -> dict:
    """Run one local pilot on the step's tokens until none is left to do or running, then record
    what it did. Pilot 0 also logs the step's progress."""
    pilots, wait = settings["pilots"], settings["wait"]
    store = store_for(settings, obsid)
    worker = Worker(
        store, job_command(settings), workdir=workdir,
        max_token_seconds=pilots.get("max_token_seconds"),
        lease_seconds=pilots["lease_seconds"],
        max_scrub=wait["max_scrub"],
        until_finished=True,
        poll_seconds=min(wait["poll_seconds"], 5),
    )
    stop = threading.Event()
    if index == 0:
        report_progress(store, wait["poll_seconds"], stop, "progress")
    try:
        report = worker.run()
    finally:
        stop.set()
    if report.released:
        raise LrtError(f"pilot stopped by a signal; token {report.released} was released for another pilot")
    result = {"worker": worker.worker_id, "processed": report.processed, "failed": report.failed,
              "conflicts": report.conflicts}
    write_json(out, result)
    return result


def wait_step(settings: Mapping, tokens_file, status_out, polls_out, results_out, *,
              pilot_reports: Iterable[str | os.PathLike] = (), clock=time.monotonic, sleep=time.sleep) -> dict:
    """Poll until the step is complete, resetting stale locks and retrying errors on the way.

    Each poll is one line in the log and one JSON line in ``polls_out``. A
    server that stops answering is waited for until the deadline; a rerun of
    a timed-out wait resumes exactly here.
    """
    wait, lease = settings["wait"], settings["pilots"]["lease_seconds"]
    outside = settings["pilots"]["launcher"] == "none"
    tokens = read_json(tokens_file)
    deadline = clock() + wait["timeout_seconds"]
    progress, store, since = Progress(clock), None, None
    if outside:
        log.info("waiting for pilots started elsewhere to process the %d tokens of %s %s",
                 len(tokens["ids"]), tokens["type"], tokens.get("obsid") or "")
    with open(polls_out, "a") as polls:
        while True:
            try:
                store = store or store_for(settings, tokens.get("obsid"))
                since = store.update_seq()  # a changes feed from here misses nothing this poll does not see
                stale = store.reset_stale(lease, max_scrub=wait["max_scrub"])
                counts = store.counts()
                retried = store.reset(store.ids_by_state("error")["error"], max_scrub=wait["max_scrub"]) \
                    if counts["error"] else []
                listing, done = ({}, []) if counts["todo"] or counts["locked"] else finished_tokens(store)
                missing = send_back_missing(store, done) if listing else []
            except (ServerUnreachable, ServerError) as error:  # an outage: keep waiting until the deadline
                if clock() > deadline:
                    raise WaitFailed(f"gave up waiting: {error}") from None
                log.warning("%s; trying again in %s s", error, wait["poll_seconds"])
                store = None
                sleep(wait["poll_seconds"])
                continue
            polls.write(json.dumps({"time": time.time(), **{s: counts[s] for s in (*STATES, "total")},
                                    "reset_stale": len(stale), "retried": len(retried),
                                    "missing_results": len(missing)}) + "\n")
            polls.flush()
            log.info("%s%s%s%s", progress.line(counts), f"; reset {len(stale)} stale" if stale else "",
                     f"; retried {len(retried)}" if retried else "",
                     f"; {len(missing)} results missing, sent back to todo" if missing else "")
            if counts["todo"] == 0 and counts["locked"] == 0 and not stale and not retried and not missing:
                break
            if missing and not outside:
                raise _failed(settings, pilot_reports, f"{len(missing)} done tokens have no results where they "
                              f"say: {', '.join(missing[:20])}. They are back in todo; run the same command again")
            if clock() > deadline:
                raise _failed(settings, pilot_reports, f"deadline of {wait['timeout_seconds']} s passed with "
                              f"{counts['todo']} tokens todo and {counts['locked']} locked; run the workflow again "
                              "to keep waiting")
            # Until the next poll, or until as many tokens finished as were left to finish: then
            # the step may be complete, and the next poll comes at once.
            unfinished = counts["todo"] + counts["locked"] + len(stale) + len(retried) + len(missing)
            until_next_poll(store, since, max(1, unfinished), min(wait["poll_seconds"], max(0.0, deadline - clock())),
                            sleep)
    return finish_wait(settings, store, counts, tokens, status_out, results_out, pilot_reports, listing, done)


def until_next_poll(store: TokenStore, since, finishing: int, seconds: float, sleep=time.sleep) -> int:
    """Wait ``seconds``, or less: until ``finishing`` of the step's tokens finished after ``since``.

    One request on the changes feed, filtered on the server to tokens of this step that
    finished: the wait learns of the last one at once, without polling faster. When the
    feed cannot be followed (a server without ``_selector`` filters, or one that went away:
    the next poll finds out which), it sleeps out the rest of the time instead.
    Returns how many finished."""
    started = time.monotonic()
    try:
        return store.follow(since, seconds, match=FINISHED, enough=finishing)[0]
    except LrtError as error:
        left = max(0.0, seconds - (time.monotonic() - started))
        log.debug("cannot follow the changes feed (%s); sleeping %.1f s instead", error, left)
        sleep(left)
        return 0


def finished_tokens(store: TokenStore) -> tuple[dict[str, list[str]], list[tuple]]:
    """({state: ids} of the step's tokens, (id, results, subband, uploads) of each done one), for both
    the results check and the results file, in one view request: the view's rows carry what is needed
    of a done token, so no document is read (1,000 of them cost pouchdb-server tenths of a second)."""
    listing = store.listing()
    done = [(token_id, *value) for token_id, value in listing["done"].items() if isinstance(value, list)]
    unlisted = [token_id for token_id, value in listing["done"].items() if not isinstance(value, list)]
    # Rows without those values come from a design document older than this version; read those tokens.
    done += [(doc["_id"], doc.get(modifiers.RESULTS), doc.get("STARTSB"), bool(doc.get("upload")))
             for doc in store.fetch(unlisted)]
    return {state: list(rows) for state, rows in listing.items()}, done


def send_back_missing(store: TokenStore, done: list[tuple]) -> list[str]:
    """Done tokens (of `finished_tokens`) whose results are not where they say, reset to todo;
    returns their ids."""
    uploaded = [(token_id, url) for token_id, url, _, uploads in done if uploads]
    with ThreadPoolExecutor(RESULT_CHECKS_AT_ONCE) as pool:
        found = list(pool.map(lambda item: bool(item[1]) and storage.exists(item[1]), uploaded))
    missing = {token_id: url or "nowhere" for (token_id, url), ok in zip(uploaded, found) if not ok}
    for token_id, url in missing.items():
        log.warning("token %s: its result %s is missing", token_id, url)
    return store.modify(list(missing), lambda doc: modifiers.state(doc) == "done" and bool(
        modifiers.reset(doc, event="reset", reason=f"result missing: {missing[doc['_id']]}")))


def finish_wait(settings: Mapping, store: TokenStore, counts: Mapping, tokens: Mapping, status_out, results_out,
                pilot_reports, listing: Mapping[str, list[str]], done_tokens: list[tuple]) -> dict:
    errors = listing["error"]
    missing = sorted(set(tokens["ids"]).difference(*listing.values()))
    done = counts["done"] / counts["total"] if counts["total"] else 1.0
    wanted = settings["wait"]["success_fraction"]
    status = {"counts": dict(counts), "errors": errors, "done_fraction": done, "missing": missing,
              "finished": time.time(), "step": settings.get("step"), "obsid": tokens.get("obsid")}
    if missing:
        raise _failed(settings, pilot_reports, f"{len(missing)} tokens of this step are gone from the database: "
                      + ", ".join(missing[:20]))
    if done < wanted:
        logs = save_failure_logs(store, errors, Path(status_out).parent / "logs" / "tokens")
        raise _failed(settings, pilot_reports,
                      f"{counts['done']} of {counts['total']} tokens are done ({done:.0%}); the step needs "
                      f"{wanted:.0%}. {len(errors)} failed after {settings['wait']['max_scrub']} retries:\n"
                      + failure_listing(errors, logs)
                      + "\nFix the cause, then 'lrt reset --view error' and run the workflow again.")
    results = [{"subband": int(subband), "url": url, "token": token_id}
               for token_id, url, subband, _ in done_tokens if url]
    write_json(results_out, {"step": settings.get("step"), "obsid": tokens.get("obsid"),
                             "results": sorted(results, key=lambda item: item["subband"])})
    write_json(status_out, status)
    return status


def save_failure_logs(store: TokenStore, ids: list[str], folder: Path) -> dict[str, dict[str, bytes]]:
    """Copy the failed tokens' logs next to the results, where they outlive the run's server."""
    logs = {}
    for doc in store.fetch(ids, attachments=True):
        files = {name: _decoded(doc["_attachments"][name])
                 for name in ("stdout.log", "stderr.log") if name in (doc.get("_attachments") or {})}
        for name, data in files.items():
            write_atomic(folder / f"{doc['_id'].replace('/', '_')}.{name}", data)
        logs[doc["_id"]] = files
    return logs


def _decoded(attachment: Mapping) -> bytes:
    return base64.b64decode(attachment.get("data", ""))


def failure_listing(errors: list[str], logs: Mapping[str, Mapping[str, bytes]]) -> str:
    lines = []
    for number, token_id in enumerate(errors[:50]):
        lines.append(f"  {token_id}")
        tail = (logs.get(token_id) or {}).get("stderr.log", b"").decode(errors="replace").splitlines()[-TAIL_LINES:]
        if number < TAILS_SHOWN and tail:
            lines += [f"      | {line}" for line in tail]
    if len(errors) > 50:
        lines.append(f"  ... and {len(errors) - 50} more")
    return "\n".join(lines) + ("\nTheir logs are in logs/tokens/ next to this step's results, and 'lrt logs TOKEN_ID' "
                               "shows them." if errors else "")


def _failed(settings: Mapping, pilot_reports, message: str) -> WaitFailed:
    """The failure, after removing the local pilots' reports so that the rerun starts pilots again."""
    for report in pilot_reports:
        Path(report).unlink(missing_ok=True)
    return WaitFailed(message)
