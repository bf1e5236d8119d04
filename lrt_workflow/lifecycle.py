"""The steps of an observation's lifecycle, one function per Snakemake rule.

srm list -> chunks -> design -> tokens -> attachments -> pilots -> wait ->
archive -> report. Each step reads the files the previous one wrote, does
its work, and writes its own output last and atomically, so a step that
fails or is killed leaves no output that looks finished, and a rerun
repeats it. The database work in every step is idempotent, so repeating it
creates nothing twice.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Mapping

from lrt_workflow import __version__, observation
from lrt_workflow.config import check_files
from lrt_workflow.couchdb import ServerUnreachable
from lrt_workflow.database import resolve
from lrt_workflow.errors import LrtError, ServerError
from lrt_workflow.report import Section, log_files, render
from lrt_workflow.srmlist import read_srm_file
from lrt_workflow.token import TokenStore, archive_tokens, load_token_config, read_archive
from lrt_workflow.token.views import STATES
from lrt_workflow.worker import Worker

log = logging.getLogger("lrt_workflow")


class WaitFailed(LrtError):
    """The tokens did not all finish well: errors above the allowed fraction, or the deadline passed."""


def write_json(path: str | os.PathLike, data) -> None:
    """Write JSON atomically: a reader never sees half a file, a crash leaves none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def store_for(config: Mapping) -> TokenStore:
    target = resolve(config.get("couchdb"))
    return TokenStore(target.open(create=True), config["token"]["type"], batch_size=config["couchdb"]["batch_size"])


# --- 1. srm list ------------------------------------------------------------------


def srmlist_step(config: Mapping, srm_out: str | os.PathLike, summary_out: str | os.PathLike) -> dict:
    """Validate every input before anything touches CouchDB; write the normalised list and its summary."""
    check_files(config)
    load_token_config(config["token"]["template"])  # refuses a bad or too-old template now, not later
    parsed = read_srm_file(config["srm_file"], pattern=observation.pattern(config))
    summary = observation.summary(parsed, config)
    Path(srm_out).parent.mkdir(parents=True, exist_ok=True)
    partial = Path(str(srm_out) + ".partial")
    partial.write_text("".join(f"{link.url}\n" for link in parsed.links))
    os.replace(partial, srm_out)
    write_json(summary_out, summary)
    return summary


# --- 2. chunks -------------------------------------------------------------------


def chunks_step(config: Mapping, srm_file: str | os.PathLike, out_dir: str | os.PathLike) -> list[dict]:
    """One file per chunk in ``out_dir``, and ``index.json`` listing them in order (written last)."""
    parsed = read_srm_file(srm_file, pattern=observation.pattern(config))
    plan = observation.chunk_plan(parsed.links, config["chunk_size"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for chunk in plan:
        (out_dir / f"{chunk['name']}.txt").write_text("".join(f"{url}\n" for url in chunk["links"]))
    index = [{"name": c["name"], "start": c["start"], "file": f"{c['name']}.txt", "count": len(c["links"])}
             for c in plan]
    write_json(out_dir / "index.json", {"obsid": parsed.obsid, "chunks": index})
    return index


# --- 3. design ---------------------------------------------------------------------


def design_step(config: Mapping, out: str | os.PathLike) -> dict:
    store = store_for(config)
    written = store.ensure_design()
    info = {"design": store.design_id, "database": store.db.database_name, "version": __version__,
            "views": store.view_names(), "written": written}
    write_json(out, info)
    return info


# --- 4. tokens ---------------------------------------------------------------------


def tokens_step(config: Mapping, chunks_index: str | os.PathLike, out: str | os.PathLike,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """One token per chunk, with the chunk's ``srm.txt`` inline; existing tokens are kept as they are."""
    index = read_json(chunks_index)
    folder = Path(chunks_index).parent
    builder = load_token_config(config["token"]["template"])
    store = store_for(config)
    store.ensure_design()
    tokens, files = [], {}
    for chunk in index["chunks"]:
        token = observation.build_token(config, builder.data, index["obsid"], chunk["name"])
        tokens.append(token)
        files[token["_id"]] = {"srm.txt": (folder / chunk["file"]).read_bytes()}
    report = store.create(tokens, files, progress=progress)
    log.info("tokens: %s", report)
    result = {"type": store.token_type, "database": store.db.database_name, "ids": [t["_id"] for t in tokens],
              "created": len(report.created), "found": len(report.found)}
    write_json(out, result)
    return result


# --- 5. attachments ----------------------------------------------------------------


def attachments_step(config: Mapping, tokens_file: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Every file of ``token.attachments`` on every token, in bulk; unchanged ones are not rewritten."""
    ids = read_json(tokens_file)["ids"]
    store = store_for(config)
    written = {}
    for name in config["token"].get("attachments") or []:
        data = Path(name).read_bytes()
        written[os.path.basename(name)] = len(store.attach(os.path.basename(name), data, ids))
    result = {"attachments": written, "tokens": len(ids)}
    write_json(out, result)
    return result


# --- 6. pilots ---------------------------------------------------------------------


def job_command(config: Mapping) -> str | None:
    """``token.command`` of config.yaml, else ``Job.command`` of the template."""
    return config["token"].get("command") or load_token_config(config["token"]["template"]).job.get("command")


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


# --- 7. wait -----------------------------------------------------------------------


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


# --- 8. archive --------------------------------------------------------------------


def archive_step(config: Mapping, tokens_file: str | os.PathLike, out: str | os.PathLike) -> Path:
    """All tokens of this observation, their attachments and logs, in one archive; then purge if asked."""
    ids = read_json(tokens_file)["ids"]
    store = store_for(config)
    out = Path(out)
    path = archive_tokens(store, out.parent, ids=ids, name=out.name)
    if config["archive"]["purge"]:
        store.delete(ids)
        log.info("archive: purged %d tokens after archiving them to %s", len(ids), path)
    return path


# --- 9. report ---------------------------------------------------------------------


def report_step(config: Mapping, status_file, polls_file, archive_file, out) -> Path:
    """The picture of the run, from the archived tokens (which outlive a purge) and their logs,
    which are copied next to the page so its links work after the database is gone."""
    status = read_json(status_file)
    _, tokens = read_archive(archive_file)
    section = Section(config["token"]["type"], tokens, status["counts"])
    title = f"{config['token']['type']} run of {Path(status_file).parent.name}"
    out = Path(out)
    for path, data in log_files(section).items():
        (out.parent / path).parent.mkdir(parents=True, exist_ok=True)
        (out.parent / path).write_bytes(data)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(render(title, section))
    os.replace(partial, out)
    return out
