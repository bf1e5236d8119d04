"""Steps 6-7: local pilots that process the tokens, and the wait for every token to finish.

With ``pilots.launcher: none``, pilots started elsewhere (a cluster, the
grid) do the work and only the wait runs here.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Mapping

from lrt_workflow.couchdb.client import ServerUnreachable
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.couchdb.target import resolve
from lrt_workflow.errors import LrtError, ServerError
from lrt_workflow.files import read_json, write_json
from lrt_workflow.pilot import Worker
from lrt_workflow.steps import store_for
from lrt_workflow.steps.tokens import job_command
from lrt_workflow.token.views import STATES

log = logging.getLogger("lrt_workflow")


class WaitFailed(LrtError):
    """The tokens did not all finish well: errors above the allowed fraction, or the deadline passed."""


def pilot_step(config: Mapping, out: str | os.PathLike, workdir: str | os.PathLike | None = None) -> dict:
    """Run one local pilot until no token is left to do, then record what it did."""
    pilots, wait = config["pilots"], config["wait"]
    worker = Worker(
        store_for(config),
        job_command(config),
        workdir=workdir,
        max_token_seconds=pilots.get("max_token_seconds"),
        lease_seconds=pilots["lease_seconds"],
        max_scrub=wait["max_scrub"],
        until_finished=True,
        poll_seconds=min(wait["poll_seconds"], 5),
    )
    report = worker.run()
    if report.released:
        raise LrtError(f"pilot stopped by a signal; token {report.released} was released for another pilot")
    result = {"worker": worker.worker_id, "processed": report.processed, "failed": report.failed,
              "conflicts": report.conflicts}
    write_json(out, result)
    return result


def progress_bar(counts: Mapping, width: int = 30) -> str:
    total = counts["total"] or 1
    finished = counts["done"] + counts["error"]
    filled = int(width * finished / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{counts['total']}"


def wait_step(config: Mapping, tokens_file: str | os.PathLike, status_out: str | os.PathLike,
              polls_out: str | os.PathLike, *, clock=time.monotonic, sleep=time.sleep) -> dict:
    """Poll until no token is todo or locked, resetting stale locks and retrying errors on the way.

    Each poll is one line in the log and one JSON line in ``polls_out``. A
    server that stops answering is waited for until the deadline; a rerun of
    a timed-out wait resumes exactly here.
    """
    settings, lease = config["wait"], config["pilots"]["lease_seconds"]
    token_ids = read_json(tokens_file)["ids"]
    deadline = clock() + settings["timeout_seconds"]
    store = None
    interactive = sys.stderr.isatty()
    with open(polls_out, "a") as polls:
        while True:
            try:
                store = store or store_for(config)
                stale = store.reset_stale(lease, max_scrub=settings["max_scrub"])
                counts = store.counts()
                retried = store.reset(store.ids("error"), max_scrub=settings["max_scrub"]) if counts["error"] else []
            except (ServerUnreachable, ServerError) as error:  # an outage: keep waiting until the deadline
                if clock() > deadline:
                    raise WaitFailed(f"gave up waiting: {error}") from None
                log.warning("wait: %s; trying again in %s s", error, settings["poll_seconds"])
                store = None
                sleep(settings["poll_seconds"])
                continue
            record = {"time": time.time(), **{s: counts[s] for s in (*STATES, "total")},
                      "reset_stale": len(stale), "retried": len(retried)}
            polls.write(json.dumps(record) + "\n")
            polls.flush()
            log.info("wait: %s%s%s", " ".join(f"{s}={counts[s]}" for s in (*STATES, "total")),
                     f" reset {len(stale)} stale" if stale else "", f" retried {len(retried)}" if retried else "")
            if interactive:
                print(progress_bar(counts), file=sys.stderr)
            if counts["todo"] == 0 and counts["locked"] == 0 and not stale and not retried:
                break
            if clock() > deadline:
                raise WaitFailed(
                    f"deadline of {settings['timeout_seconds']} s passed with {counts['todo']} tokens todo and "
                    f"{counts['locked']} locked; run the workflow again to keep waiting"
                )
            sleep(settings["poll_seconds"])
    return finish_wait(config, store, counts, token_ids, status_out)


def finish_wait(config: Mapping, store: TokenStore, counts: Mapping, token_ids, status_out) -> dict:
    errors = store.ids("error")
    missing = sorted(set(token_ids) - set(store.all_ids()))
    fraction = len(errors) / counts["total"] if counts["total"] else 0.0
    status = {"counts": dict(counts), "errors": errors, "error_fraction": fraction, "missing": missing,
              "finished": time.time()}
    allowed = config["wait"]["max_error_fraction"]
    if missing:
        raise WaitFailed(f"{len(missing)} tokens of this observation are gone from the database: "
                         + ", ".join(missing[:20]))
    if fraction > allowed:
        where = f"{resolve(config.get('couchdb')).url.rstrip('/')}/{store.db.database_name}"
        listing = "\n".join(f"  {i}  (logs: {where}/{i}/stderr.log and stdout.log)" for i in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        raise WaitFailed(
            f"{len(errors)} of {counts['total']} tokens failed after {config['wait']['max_scrub']} retries "
            f"(allowed fraction {allowed:g}):\n{listing}{more}\n"
            f"Fix the cause, then 'lrt reset --view error' and run the workflow again."
        )
    write_json(status_out, status)
    return status


