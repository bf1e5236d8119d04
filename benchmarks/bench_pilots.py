"""Pilots: claiming (our workers against the picas client's RunActor, with a ledger), the wait's
latency after the last token, and one step at scale: created, claimed by 8 workers, counted."""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import re
import shlex
import sys
import textwrap
import time
from pathlib import Path

from bench_common import (
    OBSID,
    TOKEN_TYPE,
    Bench,
    Child,
    CpuMeter,
    child_environment,
    fmt_mb,
    fmt_ms,
    fmt_n,
    fmt_s,
    last_json_line,
    median,
    run_processes,
    say,
    table,
)
from lrt_workflow.token import TokenStore, modifiers, token_id
from lrt_workflow.token.model import standard_fields

WORKER_REPORT = re.compile(r"processed (\d+) tokens? \((\d+) failed\), (\d+) claim conflicts?, (\d+) requests?")

# The picas client's RunActor, run in its own process: it installs signal handlers and would take
# over ours. It counts the 409s its saves meet and every HTTP request it makes, and prints one
# JSON line at the end. Arguments: url database design ledger; credentials in the environment.
PICAS_ACTOR = textwrap.dedent("""
    import json, os, sys
    import couchdb.http
    from couchdb.http import ResourceConflict
    from picas.actors import RunActor
    from picas.clients import CouchDB
    from picas.modifiers import BasicTokenModifier

    requests_made = 0
    original_request = couchdb.http.Session.request
    def counting_request(self, *args, **kwargs):
        global requests_made
        requests_made += 1
        return original_request(self, *args, **kwargs)
    couchdb.http.Session.request = counting_request

    class CountingCouchDB(CouchDB):
        conflicts = 0
        def save(self, doc):
            try:
                return super().save(doc)
            except ResourceConflict:
                CountingCouchDB.conflicts += 1
                raise

    class LedgerActor(RunActor):
        def __init__(self, db, ledger, **view_params):
            super().__init__(db, view="todo", **view_params)
            self.ledger = ledger
            self.modifier = BasicTokenModifier()
        def process_task(self, task):
            with open(self.ledger, "a") as ledger:
                ledger.write(task["_id"] + "\\n")
            task["exit_code"] = 0
            self.modifier.close(task)

    url, database, design, ledger = sys.argv[1:5]
    client = CountingCouchDB(url=url, db=database, username=os.environ.get("PICAS_USER"),
                             password=os.environ.get("PICAS_PASSWORD", ""))
    actor = LedgerActor(client, ledger, design_doc=design)
    error = ""
    try:
        actor.run()
    except Exception as exc:  # e.g. "Unable to claim task." after 10 conflicts in a row
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"processed": actor.tasks_processed, "conflicts": CountingCouchDB.conflicts,
                      "requests": requests_made, "error": error}))
""")

# Creates ``n`` tokens with a ~1 KB srm.txt each through TokenStore.create, as the tokens step
# does, in a process of its own so that its peak memory is its own. Prints one JSON line.
CREATE_TOKENS = textwrap.dedent("""
    import json, os, sys, time
    from lrt_workflow.couchdb import connect, open_database
    from lrt_workflow.couchdb.credentials import PicasCredentials
    from lrt_workflow.token import TokenStore, token_id
    from lrt_workflow.token.model import standard_fields

    url, database, token_type, obsid, n = sys.argv[1:6]
    started = time.perf_counter()
    client = connect(PicasCredentials(url=url, user=os.environ.get("PICAS_USER"),
                                      password=os.environ.get("PICAS_PASSWORD")))
    store = TokenStore(open_database(client, database), token_type, obsid=obsid)
    tokens, files = [], {}
    for i in range(int(n)):
        doc = {**standard_fields(token_type, token_id(token_type, obsid, i)), "OBSID": obsid, "STARTSB": f"{i:03d}"}
        tokens.append(doc)
        files[doc["_id"]] = {"srm.txt": "".join(
            f"srm://srm.grid.sara.nl:8443/pnfs/grid.sara.nl/data/lofar/ops/projects/{obsid}_SB{i:06d}_{j}.tar\\n"
            for j in range(8)).encode()}
    built = time.perf_counter()
    report = store.create(tokens, files)
    done = time.perf_counter()
    print(json.dumps({"created": len(report.created), "build": built - started, "create": done - built}))
""")


def fill_claim_database(bench: Bench, n: int, obsid: str = OBSID):
    """A fresh database with ``n`` no-op tokens and their views already indexed, so the
    claiming runs do not pay for the first index build."""
    db = bench.fresh_database("claim")
    store = TokenStore(db, TOKEN_TYPE)
    store.ensure_design()
    ids = [token_id(TOKEN_TYPE, obsid, i) for i in range(n)]
    report = store.create([{**standard_fields(TOKEN_TYPE, tid), "OBSID": obsid} for tid in ids])
    if len(report.created) != n:
        raise RuntimeError(f"claim set-up: created {len(report.created)} tokens, expected {n}")
    store.counts()
    store.ids("todo")
    return db, store, ids


def ledger_counts(ledger: Path, ids: list[str]) -> tuple[int, int]:
    """(tokens run more than once, tokens never run), from the ledger every job appends to."""
    seen = collections.Counter(ledger.read_text().split()) if ledger.exists() else collections.Counter()
    return sum(1 for count in seen.values() if count > 1), sum(1 for i in ids if i not in seen)


def worker_command(bench: Bench, database: str, ledger: Path, workdir: Path) -> list[str]:
    return [sys.executable, "-m", "lrt_workflow", "worker", "--url", bench.url, "--database", database,
            "--type", TOKEN_TYPE, "--command", f'echo "$LRT_TOKEN_ID" >> {shlex.quote(str(ledger))}',
            "--workdir", str(workdir)]


def parse_workers(finished) -> tuple[int, int, int, list[str]]:
    """(processed, conflicts, requests, errors) summed over our workers' reports."""
    processed = conflicts = requests_made = 0
    errors = []
    for child in finished:
        match = WORKER_REPORT.search(child.out or "")
        if child.code != 0 or not match:
            errors.append(f"exit {child.code}: {(child.out or '').strip()[-200:] or 'no report (see its .err log)'}")
        if match:
            processed += int(match.group(1))
            conflicts += int(match.group(3))
            requests_made += int(match.group(4))
    return processed, conflicts, requests_made, errors


def parse_picas(finished) -> tuple[int, int, int, list[str]]:
    """(processed, conflicts, requests, errors) summed over the picas actors' JSON reports."""
    processed = conflicts = requests_made = 0
    errors = []
    for child in finished:
        report = last_json_line(child.out)
        if child.code != 0 or report is None:
            errors.append(f"exit {child.code}: no report (see its .err log)")
            continue
        processed += report["processed"]
        conflicts += report["conflicts"]
        requests_made += report["requests"]
        if report["error"]:
            errors.append(report["error"])
    return processed, conflicts, requests_made, errors


def claim_run(bench: Bench, family: str, workers: int, n: int, run_dir: Path, command, parse) -> dict:
    """``workers`` concurrent processes of ``command(database name, ledger)`` on ``n`` fresh no-op tokens;
    ``parse`` sums their reports. The ledger says which tokens ran twice and which never."""
    db, store, ids = fill_claim_database(bench, n)
    name = "lrt" if family == "lrt worker" else "picas"
    ledger = run_dir / f"{name}-{workers}.ledger"
    ledger.unlink(missing_ok=True)  # from an earlier round
    try:
        server_cpu = CpuMeter.tree_cpu(bench.server.pid)
        seconds, finished = run_processes([command(db.database_name, ledger)] * workers, run_dir,
                                          run_dir / f"{name}-{workers}", child_environment(bench.server))
        server_cpu = CpuMeter.tree_cpu(bench.server.pid) - server_cpu
        processed, conflicts, requests_made, errors = parse(finished)
        twice, missed = ledger_counts(ledger, ids)
        done = store.counts()["done"]
    finally:
        bench.drop(db)
    return {"family": family, "workers": workers, "tokens": n, "seconds": seconds, "processed": processed,
            "conflicts": conflicts, "requests": requests_made, "twice": twice, "missed": missed, "done": done,
            "errors": errors, "pilot_cpu": sum(f.cpu for f in finished), "server_cpu": server_cpu}


def claim_lrt(bench: Bench, workers: int, n: int, run_dir: Path) -> dict:
    """``workers`` concurrent ``lrt worker`` processes on ``n`` no-op tokens."""
    return claim_run(bench, "lrt worker", workers, n, run_dir,
                     lambda database, ledger: worker_command(bench, database, ledger, run_dir / "work"), parse_workers)


def claim_picas(bench: Bench, workers: int, n: int, run_dir: Path) -> dict:
    """``workers`` concurrent picas ``RunActor`` processes on the same workload."""
    return claim_run(bench, "picas RunActor", workers, n, run_dir,
                     lambda database, ledger: [sys.executable, "-c", PICAS_ACTOR, bench.url, database, TOKEN_TYPE,
                                               str(ledger)], parse_picas)


def measure_claiming(bench: Bench, plan, run_dir: Path) -> list[dict]:
    """Table c: at each worker count, ours, then the picas client's, then ours again and the picas
    client's again (the mean of each pair is what counts: a drift in the machine touches both)."""
    run_dir.mkdir(exist_ok=True)
    if importlib.util.find_spec("picas") is None:
        raise RuntimeError("the picas client is not installed (it is a test extra: pip install -e '.[test]')")
    rows = []
    for workers in plan.worker_counts:
        for round_ in range(plan.claim_rounds):
            for family, claim in (("lrt", claim_lrt), ("picas", claim_picas)):
                say(f"claiming: {workers} {family} workers on {plan.claim_tokens} tokens (round {round_ + 1})")
                rows.append(claim(bench, workers, plan.claim_tokens, run_dir))
                say(f"claiming: {claim_summary(rows[-1])}")
    return rows


def claim_summary(row: dict) -> str:
    return (f"{row['family']} x{row['workers']}: {row['seconds']:.1f} s, {row['tokens'] / row['seconds']:.1f} tokens/s, "
            f"{row['requests'] / row['tokens']:.2f} requests/token, {row['conflicts']} conflicts, "
            f"{row['twice']} twice, {row['missed']} missed" + (f", errors: {row['errors']}" if row["errors"] else ""))


def claim_rates(rows: list[dict], family: str, workers: int) -> tuple[float, float]:
    """(tokens/s over all rounds of this family at this worker count, requests per token)."""
    mine = [r for r in rows if r["family"] == family and r["workers"] == workers]
    tokens = sum(r["tokens"] for r in mine)
    return tokens / sum(r["seconds"] for r in mine), sum(r["requests"] for r in mine) / tokens


def claim_cpu(rows: list[dict], family: str, workers: int) -> tuple[float, float]:
    """(the pilots' CPU ms per token, their jobs included; the server's, its JavaScript processes included)."""
    mine = [r for r in rows if r["family"] == family and r["workers"] == workers]
    tokens = sum(r["tokens"] for r in mine)
    return (1000 * sum(r["pilot_cpu"] for r in mine) / tokens, 1000 * sum(r["server_cpu"] for r in mine) / tokens)


def claim_bound(rows: list[dict], workers: int) -> str:
    """What bounds our rate against the RunActor's when server and pilots share this machine's CPUs."""
    ours, theirs = claim_cpu(rows, "lrt worker", workers), claim_cpu(rows, "picas RunActor", workers)
    return (f"CPU per token: ours {sum(ours):.1f} ms (pilots and their jobs {ours[0]:.1f}, server {ours[1]:.1f}), "
            f"the RunActor's {sum(theirs):.1f} ms (pilots {theirs[0]:.1f}, server {theirs[1]:.1f}). Server and "
            f"pilots share {os.cpu_count()} CPUs here, so while the CPUs are the limit the rates can differ by about "
            f"{sum(theirs) / sum(ours):.2f}×. Our floor per token is one job process and one write of its "
            "result, made when the job ends (a killed pilot loses no finished result); section c shows the split")


def render_claiming(servers: list[str], results: dict, plan) -> str:
    rows, notes = [], []
    for workers in plan.worker_counts:
        for family in ("lrt worker", "picas RunActor"):
            cells = []
            for server in servers:
                mine = [r for r in results[server]["claiming"] if r["family"] == family and r["workers"] == workers]
                rate, per_token = claim_rates(results[server]["claiming"], family, workers)
                pilots_ms, server_ms = claim_cpu(results[server]["claiming"], family, workers)
                cells += [" / ".join(f"{r['tokens'] / r['seconds']:.0f}" for r in mine) + f" → **{rate:.0f}**",
                          f"{per_token:.2f}", f"{pilots_ms:.1f} + {server_ms:.1f} = {pilots_ms + server_ms:.1f}",
                          f"{sum(r['twice'] for r in mine)} / {sum(r['missed'] for r in mine)}",
                          str(sum(r["conflicts"] for r in mine))]
                notes += [f"{server}, {family} ×{workers}: {e}" for r in mine for e in r["errors"]]
            rows.append([workers, family, *cells])
        ratio = []
        for server in servers:
            ours = claim_rates(results[server]["claiming"], "lrt worker", workers)[0]
            theirs = claim_rates(results[server]["claiming"], "picas RunActor", workers)[0]
            ratio += [f"**{ours / theirs:.2f}×** the RunActor", "", "", "", ""]
        rows.append([workers, "lrt ÷ picas", *ratio])
    header = ["processes", "worker"]
    for server in servers:
        header += [f"{server}: tokens/s (runs → all)", "requests per token", "CPU ms per token: pilots + server",
                   "twice / missed", "409s"]
    text = [
        "## c. Claiming: concurrent workers on no-op tokens",
        "",
        f"Each run: a fresh database of {fmt_n(plan.claim_tokens)} tokens (no attachments), views indexed "
        "beforehand, then all worker processes started at once; seconds run from the first start to the last exit "
        f"(Python start-up included). The two families take turns, {plan.claim_rounds} runs each; **all** is the "
        "tokens of every run over their seconds. Ours run `python -m lrt_workflow worker` with the command "
        "`echo \"$LRT_TOKEN_ID\" >> ledger`; the picas `RunActor.process_task` appends the task id to its own "
        "ledger in-process (no job process at all), sets `exit_code` = 0 and closes the token. *Requests per "
        "token* is every HTTP request the processes made (ours count them with a response hook and print them; "
        "picas's are counted by wrapping `couchdb.http.Session.request`), start-up included, over the tokens. "
        "*Twice* counts ledger ids that appear more than once, *missed* the tokens never in the ledger. *CPU per "
        "token*: the pilot processes' user and system time with their jobs' (from `wait4`), and the server's with "
        "its children's (Apache CouchDB's JavaScript processes), read before and after each run, over the tokens.",
        "",
        table(header, rows),
    ]
    if notes:
        text += [""] + [f"- {note}" for note in notes]
    return "\n".join(text)


# --- d. waiting ------------------------------------------------------------------------------------


def finish_tokens(store: TokenStore, ids: list[str]) -> None:
    def done(doc):
        modifiers.claim(doc, worker_id="bench", hostname="bench")
        modifiers.conclude(doc, 0)
    store.modify(ids, done)


def wait_files(bench: Bench, folder: Path, database: str, ids: list[str], poll_seconds: float) -> list[str]:
    """A one-step configuration and tokens.json for ``lrt step wait`` on ``database``; its command line."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"srm_file": "unused.txt", "token": {"type": TOKEN_TYPE, "template": "unused.json"},
              "couchdb": {"url": bench.url, "database": database},
              "pilots": {"launcher": "none"}, "wait": {"poll_seconds": poll_seconds, "max_scrub": 0}}
    (folder / "config.yaml").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "tokens.json").write_text(json.dumps({"ids": ids, "obsid": OBSID, "type": TOKEN_TYPE}))
    return [sys.executable, "-m", "lrt_workflow", "step", "wait", "--config", "config.yaml", "--tokens", "tokens.json",
            "--status-out", "status.json", "--polls-out", "polls.jsonl", "--results-out", "results.json"]


def polls(folder: Path) -> int:
    path = folder / "polls.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def measure_waiting(bench: Bench, plan, run_dir: Path) -> list[dict]:
    """Table d: the time from the last token done to ``lrt step wait`` ending.

    Each run: a fresh database of ``wait_tokens`` tokens of which all but one are done; the
    wait (a process of its own, polling every ``wait_poll`` seconds, the shipped default) is
    started; once it has made its first poll, the last token is finished here. The time runs
    from the start of that write to the wait process's exit: its last count, its results,
    its status file and its own exit included.
    """
    rows = []
    for attempt in range(plan.wait_repeats):
        db = bench.fresh_database("wait")
        store = TokenStore(db, TOKEN_TYPE, obsid=OBSID)
        store.ensure_design()
        ids = [token_id(TOKEN_TYPE, OBSID, i) for i in range(plan.wait_tokens)]
        store.create([{**standard_fields(TOKEN_TYPE, tid), "OBSID": OBSID, "STARTSB": f"{i:03d}"}
                      for i, tid in enumerate(ids)])
        finish_tokens(store, ids[:-1])
        folder = run_dir / f"wait-{attempt}"
        child = Child(wait_files(bench, folder, db.database_name, ids, plan.wait_poll), folder, folder / "wait",
                      child_environment(bench.server))
        try:
            deadline = time.monotonic() + 120
            while polls(folder) < 1:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the wait ended or stalled before its first poll: {child.poll()}")
                time.sleep(0.01)
            started = time.perf_counter()
            finish_tokens(store, ids[-1:])
            finished = child.wait(timeout=plan.wait_poll * 3 + 60)
            latency = time.perf_counter() - started
            status = json.loads((folder / "status.json").read_text()) if finished.code == 0 else {}
            rows.append({"tokens": plan.wait_tokens, "latency": latency, "polls": polls(folder),
                         "peak_kb": finished.peak_kb, "code": finished.code,
                         "done": status.get("counts", {}).get("done")})
            say(f"waiting: last token done -> wait ended in {latency:.2f} s ({polls(folder)} polls, "
                f"poll interval {plan.wait_poll} s)")
        finally:
            child.stop()
            bench.drop(db)
    return rows


def render_waiting(servers: list[str], results: dict, plan) -> str:
    rows = []
    for server in servers:
        runs = results[server]["waiting"]
        rows.append([server, " / ".join(f"{r['latency']:.2f}" for r in runs),
                     f"**{median([r['latency'] for r in runs]):.2f}**", " / ".join(str(r["polls"]) for r in runs),
                     fmt_mb(max(r["peak_kb"] for r in runs)),
                     "yes" if all(r["code"] == 0 and r["done"] == r["tokens"] for r in runs) else "**no**"])
    return "\n".join([
        "## d. Waiting: from the last token done to `lrt step wait` ending",
        "",
        f"{fmt_n(plan.wait_tokens)} tokens of one observation, all but one done; `lrt step wait` runs as a process "
        f"of its own with `wait.poll_seconds: {plan.wait_poll}` (the shipped default). Once it has made its first "
        "poll, the benchmark finishes the last token; the time runs from the start of that write to the wait's "
        "exit. Between polls the wait follows the changes feed (`feed=continuous&filter=_selector`, the step's "
        "finished tokens), so it learns of the last token at once; polling alone would take half the interval on "
        "average. *Polls* is the lines of `polls.jsonl`: one before, one after.",
        "",
        table(["server", "seconds (runs)", "median s", "polls", "peak RSS MB", "complete"], rows),
    ])


# --- e. scale -------------------------------------------------------------------------------------


def measure_scale(bench: Bench, plan, run_dir: Path) -> list[dict]:
    """Table e: one step of N tokens created (a process of its own: TokenStore.create, srm.txt
    inline), its views indexed, claimed by ``scale_workers`` workers while ``lrt step wait`` waits,
    and counted. Peak memory of each process from its VmHWM, read while it runs."""
    rows = []
    env = child_environment(bench.server)
    for n in plan.scale_sizes:
        db = bench.fresh_database(f"scale{n}")
        store = TokenStore(db, TOKEN_TYPE, obsid=OBSID)
        store.ensure_design()
        folder = run_dir / f"scale-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            say(f"scale N={n}: creating")
            creator = Child([sys.executable, "-c", CREATE_TOKENS, bench.url, db.database_name, TOKEN_TYPE, OBSID,
                             str(n)], folder, folder / "create", env).wait()
            created = last_json_line(creator.out) or {}
            if creator.code != 0 or created.get("created") != n:
                raise RuntimeError(f"scale N={n}: the creation failed: {creator.out[-300:]} (see {folder}/create.err)")
            started = time.perf_counter()
            store.ids("todo", limit=1)  # the first view query builds the index the claims read
            store.counts()
            indexed = time.perf_counter() - started
            say(f"scale N={n}: created in {created['create']:.1f} s, indexed in {indexed:.1f} s; claiming")
            ids = [token_id(TOKEN_TYPE, OBSID, i) for i in range(n)]
            waiter = Child(wait_files(bench, folder, db.database_name, ids, plan.wait_poll), folder, folder / "wait",
                           env)
            ledger = folder / "ledger"
            try:
                seconds, finished = run_processes([worker_command(bench, db.database_name, ledger, folder / "work")]
                                                  * plan.scale_workers, folder, folder / "worker", env)
                workers_ended = time.perf_counter()
                waited = waiter.wait(timeout=plan.wait_poll * 3 + 600)
                wait_after = time.perf_counter() - workers_ended
            finally:
                waiter.stop()
            processed, conflicts, requests_made, errors = parse_workers(finished)
            twice, missed = ledger_counts(ledger, ids)
            calls = []
            for _ in range(3):
                started = time.perf_counter()
                counts = store.counts()
                calls.append(time.perf_counter() - started)
            rows.append({"tokens": n, "create": created["create"], "build": created["build"],
                         "client_kb": creator.peak_kb, "indexed": indexed, "claim": seconds, "processed": processed,
                         "requests": requests_made, "twice": twice, "missed": missed, "errors": errors,
                         "worker_kb": max(f.peak_kb for f in finished), "counts": median(calls),
                         "done": counts["done"], "wait_kb": waited.peak_kb, "wait_code": waited.code,
                         "wait_after": wait_after})
            say(f"scale N={n}: claimed in {seconds:.1f} s ({n / seconds:.0f}/s), {twice} twice, {missed} missed; "
                f"counts {calls[-1] * 1000:.0f} ms; wait ended {wait_after:.2f} s after the last worker")
        finally:
            bench.drop(db)
    return rows


def render_scale(servers: list[str], results: dict, plan) -> str:
    rows = []
    for server in servers:
        previous = None
        for r in results[server]["scale"]:
            growth = ""
            if previous:
                factor = r["tokens"] / previous["tokens"]
                growth = (f"×{factor:.0f} tokens: create ×{r['create'] / previous['create']:.1f}, "
                          f"claim ×{r['claim'] / previous['claim']:.1f}, counts ×{r['counts'] / previous['counts']:.1f}"
                          f", client RSS ×{r['client_kb'] / previous['client_kb']:.1f}, "
                          f"wait RSS ×{r['wait_kb'] / previous['wait_kb']:.1f}")
            rows.append([server, fmt_n(r["tokens"]), f"{fmt_s(r['create'])} ({fmt_n(r['tokens'] / r['create'])}/s)",
                         fmt_mb(r["client_kb"]), fmt_s(r["indexed"]),
                         f"{fmt_s(r['claim'])} ({fmt_n(r['tokens'] / r['claim'])}/s)",
                         f"{r['requests'] / r['tokens']:.2f}", f"{r['twice']} / {r['missed']}",
                         fmt_ms(r["counts"]), fmt_mb(r["wait_kb"]), f"{r['wait_after']:.2f}", fmt_mb(r["worker_kb"]),
                         growth])
            previous = r
    return "\n".join([
        "## e. Scale: one step of N tokens, created, claimed by "
        f"{plan.scale_workers} workers and counted",
        "",
        "Per size, a fresh database: the tokens created by `TokenStore.create` (each with a ~1 KB srm.txt) in a "
        "process of its own; the views indexed by a first query (timed apart: the claims would otherwise pay for "
        f"it); then {plan.scale_workers} `lrt worker` processes on no-op jobs while `lrt step wait` waits; then "
        "`counts()` (median of 3). Peak RSS is each process's own `VmHWM` (`/proc/PID/status`), read every "
        "20 ms while it runs; the last reading before its exit counts, so a peak reached in its last 20 ms is "
        "missed. The worker column is the largest of the workers. The client's includes building the tokens it "
        "creates. *Wait ended after* is from the last worker's exit to the wait's.",
        "",
        table(["server", "tokens", "create s (tokens/s)", "client peak RSS MB", "index build s",
               "claim s (tokens/s)", "requests per token", "twice / missed", "counts() ms", "wait peak RSS MB",
               "wait ended after s", "worker peak RSS MB", "growth from the size before"], rows),
    ])
