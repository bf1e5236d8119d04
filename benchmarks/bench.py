#!/usr/bin/env python3
"""Benchmarks of lrt_workflow on its own embedded CouchDB server: ``make bench``.

What it measures, and against what:

a. creating tokens with a ~1 KB ``srm.txt`` each: bare ``_bulk_docs`` of
   documents of the same size (the server's floor), the original tools'
   pattern of two PUTs per token, and ``TokenSet.create_dict_tokens``;
b. ``TokenStore.counts()``: its latency as the database grows, next to the
   bare reduce query it makes, and how many HTTP requests one call makes;
c. claiming: concurrent ``lrt worker`` processes and, side by side, the
   ``picas`` client's ``RunActor``, with a ledger of every token each ran,
   so duplicate and lost tokens are counted, not assumed;
d. Snakemake's overhead on the demo workflow, when there is a Snakefile.

The results are Markdown tables on stdout (and in ``--out FILE``); progress
goes to stderr. The server is started here on a temporary folder and always
stopped, also on an error or Ctrl-C. ``--quick`` runs everything at toy
sizes: that is what the smoke test checks for correctness, never for time.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import importlib.metadata
import importlib.util
import itertools
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import requests

from lrt_workflow.couchdb import connect, open_database
from lrt_workflow.couchdb.credentials import PicasCredentials
from lrt_workflow.couchdb.embedded import EmbeddedServer
from lrt_workflow.token import TokenHandler, TokenSet, TokenStore, token_id
from lrt_workflow.token.builders import TokenDictBuilder
from lrt_workflow.couchdb.store import BATCH_SIZE
from lrt_workflow.token.model import inline_attachment, standard_fields

ROOT = Path(__file__).resolve().parent.parent
TOKEN_TYPE = "bench"
OBSID = "L229507"
LINKS_PER_TOKEN = 8  # 8 srm URLs of 118 bytes: a ~1 KB srm.txt per token
LINK = ("srm://srm.grid.sara.nl:8443/pnfs/grid.sara.nl/data/lofar/ops/projects/lc2_038/229507/"
        "L229507_SB{sb:03d}_uv.dppp.MS_3d78b8f1.tar")
#: A token configuration of the usual shape (compare example/token.json).
TEMPLATE = {
    "PicasApiVersion": 0.5,
    "Job": {"variables": {"OBSID": OBSID, "PIPELINE_STEP": "bench"}},
    "Token": {
        "status": "queued",
        "times": {},
        "variables": {
            "_attachments": {"$SRMFILE": "srm.txt"},
            "_token_keys": {"$OBSID": "OBSID", "$STARTSB": "STARTSB", "$PIPELINE_STEP": "PIPELINE_STEP"},
        },
    },
}
RAW_BATCH = 1000
JSON_HEADERS = {"Content-Type": "application/json"}  # pouchdb-server needs it on a raw PUT
WORKER_REPORT = re.compile(r"processed (\d+) tokens \((\d+) failed\), (\d+) claim conflicts")
PROCESS_TIMEOUT = 900.0

# The picas client's RunActor, run in its own process: it installs signal
# handlers and would take over ours. It counts the 409s its saves meet and
# prints one JSON line at the end. Arguments: url database design ledger.
PICAS_ACTOR = textwrap.dedent("""
    import json, sys
    from couchdb.http import ResourceConflict
    from picas.actors import RunActor
    from picas.clients import CouchDB
    from picas.modifiers import BasicTokenModifier

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
    actor = LedgerActor(CountingCouchDB(url=url, db=database), ledger, design_doc=design)
    error = ""
    try:
        actor.run()
    except Exception as exc:  # e.g. "Unable to claim task." after 10 conflicts in a row
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"processed": actor.tasks_processed, "conflicts": CountingCouchDB.conflicts, "error": error}))
""")


# --- what to run --------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The sizes of one run: the full one of ``make bench``, or the toy one of ``--quick``."""

    name: str
    creation_sizes: tuple[int, ...]
    repeats: int
    classic_sample: int  # classic runs on at most this many tokens; larger N is extrapolated
    batch_sizes: tuple[int, ...]  # TokenStore batch sizes tried at the largest creation size
    monitor_sizes: tuple[int, ...]
    monitor_calls: int
    claim_tokens: int
    picas_tokens: int
    worker_counts: tuple[int, ...]
    snakemake: bool


FULL = Plan("full", (1_000, 10_000), 3, 1_000, (250, 500, 1_000, 2_000), (1_000, 10_000, 50_000), 10,
            2_000, 2_000, (4, 8), True)
QUICK = Plan("quick", (200,), 1, 1_000, (100, 500), (200, 1_000), 10, 60, 60, (4, 8), False)
#: For the largest creation size classic is measured on this many tokens, then extrapolated.
CLASSIC_SAMPLE_LARGE = 500


@dataclass
class Results:
    """Everything measured, as data (for the smoke test) and as Markdown (for people)."""

    plan: Plan
    environment: dict = field(default_factory=dict)
    creation: list[dict] = field(default_factory=list)
    batch_sweep: list[dict] = field(default_factory=list)
    monitoring: list[dict] = field(default_factory=list)
    claiming: list[dict] = field(default_factory=list)
    snakemake: dict = field(default_factory=dict)
    targets: list[dict] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    markdown: str = ""

    @property
    def ok(self) -> bool:
        """All correctness checks passed (times are reported, never checked)."""
        return all(passed for _, passed in self.checks)


# --- helpers ------------------------------------------------------------------------

_START = time.monotonic()


def say(message: str) -> None:
    """Progress on stderr, so stdout stays pure Markdown."""
    print(f"[bench {time.monotonic() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def fmt_n(value: float) -> str:
    return f"{value:,.0f}"


def table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


class Bench:
    """The embedded server of this run, and fresh databases on it."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.server = EmbeddedServer(workdir / "couchdb")
        self.url = ""
        self.client = None
        self.session = requests.Session()  # the "plain requests.Session" of the raw and classic patterns
        self._numbers = itertools.count()
        self.pid = 0

    def start(self) -> None:
        state, _ = self.server.start()
        self.pid = state.pid
        self.url = state.url.rstrip("/")
        self.client = connect(PicasCredentials(url=state.url))
        say(f"embedded server at {self.url} (pid {state.pid})")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.session.close()
        if self.server.stop():
            say("embedded server stopped")

    def fresh_database(self, label: str):
        """A new, empty database, so no measurement sees another's documents or indexes."""
        return open_database(self.client, f"{label}_{next(self._numbers):03d}", create=True)

    def drop(self, db) -> None:
        """Delete a database once measured, so the server's folder stays small."""
        self.session.delete(db.database_url)


class CpuMeter:
    """How much CPU other processes took during the run: the machine's busy time minus ours.

    Ours is this process, the children it waited for (workers, Snakemake)
    and the server. Timings on a 2-core machine mean little if, say, a test
    suite ran alongside; this makes that visible in the results.
    """

    def __init__(self):
        self.started = time.monotonic()
        self.busy = self._machine_busy()
        self.own = self._own()

    @staticmethod
    def _machine_busy() -> float:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return 0.0
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    @staticmethod
    def process_cpu(pid: int) -> float:
        """CPU seconds of a process that is not our waited-for child (the server)."""
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def others(self, server_pid: int) -> tuple[float, float]:
        """(CPU seconds other processes used, the same as a fraction of the machine)."""
        elapsed = time.monotonic() - self.started
        busy = self._machine_busy() - self.busy
        own = self._own() - self.own + self.process_cpu(server_pid)
        other = max(0.0, busy - own)
        return other, other / max(1e-9, elapsed * (os.cpu_count() or 1))


def worker_environment() -> dict:
    """Our environment without PiCaS settings, so the workers use exactly --url and --database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICAS")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --- a. creation ----------------------------------------------------------------------


def chunk_links(count: int) -> dict[str, list[str]]:
    """``count`` chunks of srm URLs keyed by first subband, as `slice_dicts` makes them."""
    return {str(i * LINKS_PER_TOKEN): [LINK.format(sb=i * LINKS_PER_TOKEN + j) for j in range(LINKS_PER_TOKEN)]
            for i in range(count)}


def token_documents(chunks: dict[str, list[str]]) -> list[tuple[dict, bytes]]:
    """(document, srm.txt) per chunk, built as `create_dict_tokens` builds them, so that
    every method stores the same tokens and the same bytes."""
    fields = TokenDictBuilder(TEMPLATE).data
    pairs = []
    for key, links in chunks.items():
        tid = token_id(TOKEN_TYPE, OBSID, key)
        doc = {**standard_fields(TOKEN_TYPE, tid), **fields, "STARTSB": f"{int(key):03d}"}
        pairs.append((doc, "".join(f"{link}\n" for link in links).encode()))
    return pairs


def inline_documents(pairs: list[tuple[dict, bytes]]) -> list[dict]:
    """The documents as lrt sends them: srm.txt inline, base64."""
    return [{**doc, "_attachments": {"srm.txt": inline_attachment(data)}} for doc, data in pairs]


def raw_documents(pairs: list[tuple[dict, bytes]]) -> list[dict]:
    """Documents exactly as long, in JSON, as the tokens with srm.txt inline, but with no
    attachment: a padding field takes its place. Storing these is the server's floor."""
    docs = []
    for doc, data in pairs:
        target = len(json.dumps({**doc, "_attachments": {"srm.txt": inline_attachment(data)}}))
        bare = len(json.dumps({**doc, "pad": ""}))
        docs.append({**doc, "pad": "x" * max(0, target - bare)})
    return docs


def create_raw(session: requests.Session, db_url: str, docs: list[dict], batch: int = RAW_BATCH) -> int:
    """Bare ``_bulk_docs`` POSTs; returns how many documents the server saved."""
    saved = 0
    for start in range(0, len(docs), batch):
        response = session.post(f"{db_url}/_bulk_docs", json={"docs": docs[start:start + batch]})
        response.raise_for_status()
        saved += sum(1 for row in response.json() if "rev" in row and "error" not in row)
    return saved


def create_classic(session: requests.Session, db_url: str, pairs: list[tuple[dict, bytes]]) -> int:
    """The original tools' pattern: PUT the token, then PUT its attachment with ``?rev=``.

    Two requests per token is the least that pattern makes (the original also
    re-read each token before attaching), so the ratio it yields is a lower bound.
    """
    saved = 0
    for doc, data in pairs:
        url = f"{db_url}/{urllib.parse.quote(doc['_id'], safe='')}"
        response = session.put(url, data=json.dumps(doc), headers=JSON_HEADERS)
        response.raise_for_status()
        response = session.put(f"{url}/srm.txt", params={"rev": response.json()["rev"]}, data=data,
                               headers={"Content-Type": "text/plain"})
        response.raise_for_status()
        saved += 1
    return saved


def create_lrt(db, chunks: dict[str, list[str]], batch_size: int | None = None) -> int:
    """The project's public API, as a user calls it; returns how many tokens it created."""
    handler = TokenHandler(TOKEN_TYPE, database=db)
    if batch_size:
        handler.store.batch_size = batch_size
    report = TokenSet(handler, tok_config=TEMPLATE).create_dict_tokens(chunks, id_append=OBSID, file_upload="srm.txt")
    return len(report.created)


def timed_runs(bench: Bench, repeats: int, actions: dict[str, tuple[Callable[[object], int], int]]
               ) -> dict[str, tuple[list[float], list[int]]]:
    """Time each ``action(fresh database)`` ``repeats`` times: {name: (seconds per run, documents saved per run)}.

    The actions take turns (one run of each, then the next round), so a
    drift in the server's or the machine's speed during the measurement
    touches them all alike instead of favouring whichever ran first. Only
    the action is timed: making and dropping its database are not. A run
    that saves fewer documents than expected is an error, not a fast result.
    """
    timings = {name: ([], []) for name in actions}
    for _ in range(repeats):
        for name, (action, expect) in actions.items():
            db = bench.fresh_database(re.sub(r"[^a-z0-9]", "", name.lower())[:20] or "run")
            try:
                started = time.perf_counter()
                saved = action(db)
                elapsed = time.perf_counter() - started
            finally:
                bench.drop(db)
            if saved != expect:
                raise RuntimeError(f"{name}: saved {saved} documents, expected {expect}")
            timings[name][0].append(elapsed)
            timings[name][1].append(saved)
    return timings


def warm_up(bench: Bench, n: int) -> None:
    """One untimed pass of every method at the largest size (classic on a few tokens), so the
    server's JIT and caches are warm before the first measured run, not during it."""
    chunks = chunk_links(n)
    pairs = token_documents(chunks)
    timed_runs(bench, 1, {
        "warmraw": (lambda db: create_raw(bench.session, db.database_url, raw_documents(pairs)), n),
        "warmclassic": (lambda db: create_classic(bench.session, db.database_url, pairs[:100]), min(n, 100)),
        "warmlrt": (lambda db: create_lrt(db, chunks), n),
    })


def same_documents(bench: Bench, pairs: list[tuple[dict, bytes]]) -> bool:
    """True when the API stores, field for field, the documents the raw and classic runs store:
    the comparison is then between ways of writing, not between documents."""
    sample = dict(itertools.islice(chunk_links(len(pairs)).items(), 3))
    db = bench.fresh_database("same")
    try:
        create_lrt(db, sample)
        store = TokenStore(db, TOKEN_TYPE)
        for (doc, data), key in zip(pairs, sample):
            stored = store.get(doc["_id"])
            stored_fields = {k: v for k, v in stored.items() if k not in ("_rev", "_attachments")}
            if stored_fields != doc or store.get_attachment(doc["_id"], "srm.txt") != data:
                return False
        return True
    finally:
        bench.drop(db)


def measure_creation(bench: Bench, plan: Plan, results: Results) -> None:
    """Table a: the three ways of creating N tokens, each run on a fresh database."""
    say("creation: warm-up")
    warm_up(bench, max(plan.creation_sizes))
    for n in plan.creation_sizes:
        chunks = chunk_links(n)
        pairs = token_documents(chunks)
        raw = raw_documents(pairs)
        sample = n if n <= plan.classic_sample else min(n, CLASSIC_SAMPLE_LARGE)
        say(f"creation N={n}: raw, classic (on {sample} tokens) and lrt_workflow, {plan.repeats} round(s)")
        timings = timed_runs(bench, plan.repeats, {
            "raw": (lambda db: create_raw(bench.session, db.database_url, raw), n),
            "classic": (lambda db: create_classic(bench.session, db.database_url, pairs[:sample]), sample),
            "lrt": (lambda db: create_lrt(db, chunks), n),
        })
        (raw_runs, raw_saved), (classic_runs, classic_saved), (lrt_runs, lrt_saved) = timings.values()
        say(f"creation N={n}: raw {median(raw_runs):.2f} s, classic {median(classic_runs):.2f} s "
            f"on {sample}, lrt {median(lrt_runs):.2f} s")
        results.creation.append({
            "tokens": n, "doc_bytes": round(statistics.mean(len(json.dumps(doc)) for doc in raw)),
            "srm_bytes": len(pairs[0][1]),
            "raw": median(raw_runs), "raw_runs": raw_runs, "raw_created": raw_saved,
            "classic": median(classic_runs) * n / sample, "classic_runs": classic_runs, "classic_sample": sample,
            "classic_created": classic_saved,
            "lrt": median(lrt_runs), "lrt_runs": lrt_runs, "lrt_created": lrt_saved,
        })
    results.checks.append(("the API stores the same documents as the raw and classic runs",
                           same_documents(bench, token_documents(chunk_links(3)))))


def measure_batch_sizes(bench: Bench, plan: Plan, results: Results) -> None:
    """Where lrt's time goes at the largest N, and which TokenStore batch size is best.

    Besides ``create_dict_tokens`` with each batch size, two reference
    points are timed on their own: the existence check that ``TokenStore.create``
    makes only with ``overwrite`` (one ``_all_docs`` POST per 2,000 ids; a plain
    create lets the server's 409s say which tokens exist) and the bare bulk
    writes of the tokens with their attachments inline: the floor for any
    creation that carries the attachments.
    """
    n = max(plan.creation_sizes)
    chunks = chunk_links(n)
    pairs = token_documents(chunks)
    inline = inline_documents(pairs)
    ids = [doc["_id"] for doc, _ in pairs]
    actions = {f"lrt_workflow, `TokenStore` batch_size={size}" + (" (the default)" if size == BATCH_SIZE else ""):
               ((lambda size: lambda db: create_lrt(db, chunks, size))(size), n) for size in plan.batch_sizes}
    actions["existence check alone, made only with overwrite (`_all_docs` POSTs of the ids)"] = (
        lambda db: n - len(TokenStore(db, TOKEN_TYPE).revisions(ids)), n)
    for size in (500, 1000):
        actions[f"bare `_bulk_docs` of the tokens with srm.txt inline, batches of {size}"] = (
            (lambda size: lambda db: create_raw(bench.session, db.database_url, inline, size))(size), n)
    say(f"batch sweep N={n}: {len(actions)} variants, {plan.repeats} round(s)")
    for what, (runs, _) in timed_runs(bench, plan.repeats, actions).items():
        results.batch_sweep.append({"what": what, "tokens": n, "seconds": median(runs), "runs": runs})


def render_creation(results: Results) -> str:
    plan = results.plan
    rows, ratios = [], []
    for row in results.creation:
        n = row["tokens"]
        classic_note = ("2 PUTs per token" if row["classic_sample"] == n else
                        f"2 PUTs per token; **extrapolated** linearly from {row['classic_sample']} tokens "
                        f"({fmt_s(median(row['classic_runs']))} s)")
        rows += [
            [fmt_n(n), "raw: bare `_bulk_docs`, no attachments", fmt_s(row["raw"]), fmt_n(n / row["raw"]),
             f"POSTs of {RAW_BATCH} documents padded to the tokens' size ({row['doc_bytes']} B)"],
            [fmt_n(n), "classic: document PUT + attachment PUT", fmt_s(row["classic"]), fmt_n(n / row["classic"]),
             classic_note],
            [fmt_n(n), "lrt_workflow: `TokenSet.create_dict_tokens`", fmt_s(row["lrt"]), fmt_n(n / row["lrt"]),
             f"`_bulk_docs` of {BATCH_SIZE}, srm.txt inline; 409s count as found"],
        ]
        ratios.append([fmt_n(n), f"{row['classic'] / row['lrt']:.1f}×", f"{row['lrt'] / row['raw']:.2f}×",
                       " / ".join(fmt_s(s) for s in row["lrt_runs"])])
    first = results.creation[0]
    text = [
        "## a. Creating tokens, each with a ~1 KB `srm.txt`",
        "",
        f"Seconds are the median of {plan.repeats} run(s), each on a fresh database of the same server. "
        f"Every token has an `srm.txt` of {first['srm_bytes']} bytes ({LINKS_PER_TOKEN} srm URLs); "
        f"a token with it inline is {first['doc_bytes']} bytes of JSON.",
        "",
        table(["tokens", "method", "seconds", "tokens/s", "how"], rows),
        "",
        table(["tokens", "classic / lrt", "lrt / raw", "lrt runs (s)"], ratios),
    ]
    if results.batch_sweep:
        n = results.batch_sweep[0]["tokens"]
        raw = next(r["raw"] for r in results.creation if r["tokens"] == n)
        text += [
            "",
            f"Where lrt_workflow's time goes at {fmt_n(n)} tokens, and the `TokenStore` batch size "
            f"(median of {plan.repeats}, the variants taking turns; raw = {fmt_s(raw)} s):",
            "",
            table(["what", "seconds", "tokens/s", "÷ raw"],
                  [[r["what"], fmt_s(r["seconds"]), fmt_n(n / r["seconds"]), f"{r['seconds'] / raw:.2f}×"]
                   for r in results.batch_sweep]),
        ]
    return "\n".join(text)


# --- b. monitoring --------------------------------------------------------------------


def monitor_document(index: int, now: int) -> tuple[dict, str]:
    """A token-shaped document in one of the four states (most todo, some of each other)."""
    doc = standard_fields(TOKEN_TYPE, token_id(TOKEN_TYPE, OBSID, index))
    slot = index % 20
    if slot == 0:
        doc.update(lock=now, hostname="bench", status="locked")
        return doc, "locked"
    if slot == 1:
        doc.update(lock=now, done=now, output=1, exit_code=1, status="error")
        return doc, "error"
    if slot < 6:
        doc.update(lock=now, done=now, output=0, exit_code=0, status="done")
        return doc, "done"
    return doc, "todo"


class RequestCounter:
    """Counts the HTTP responses a requests session receives, via its response hook."""

    def __init__(self, session: requests.Session):
        self.session = session
        self.count = 0

    def _hook(self, response, *args, **kwargs):
        self.count += 1
        return response

    def __enter__(self) -> "RequestCounter":
        self.session.hooks.setdefault("response", []).append(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self.session.hooks["response"].remove(self._hook)


def measure_monitoring(bench: Bench, plan: Plan, results: Results) -> None:
    """Table b: ``counts()`` on one database grown to each size in turn.

    The documents are written with bare ``_bulk_docs`` (faster than making
    50,000 real tokens, and the view only reads ``type``, ``lock``, ``done``,
    ``output`` and ``status``). The first call after growing pays for the
    index update and is reported apart; then each call is timed, next to the
    same reduce query made with a bare requests session: what the server
    alone takes, so that the client's share of the latency is visible.
    """
    db = bench.fresh_database("monitor")
    store = TokenStore(db, TOKEN_TYPE)
    store.ensure_design()
    view_url = f"{db.database_url}/{store.design_id}/_view/overview_view"
    expected = collections.Counter()
    now = int(time.time())
    have = 0
    try:
        for n in plan.monitor_sizes:
            say(f"monitoring: growing the database to {n} tokens")
            while have < n:
                batch = [monitor_document(i, now) for i in range(have, min(n, have + RAW_BATCH))]
                create_raw(bench.session, db.database_url, [doc for doc, _ in batch])
                expected.update(state for _, state in batch)
                have += len(batch)
            started = time.perf_counter()
            store.counts()
            warmup = time.perf_counter() - started
            say(f"monitoring N={n}: first counts() (index update) {warmup:.2f} s; timing {plan.monitor_calls} calls")
            latencies, requests_made, bare = [], [], []
            with RequestCounter(db.r_session) as counter:
                for _ in range(plan.monitor_calls):
                    # counts() and the bare query take turns, so both see the server in the same state.
                    before = counter.count
                    started = time.perf_counter()
                    counts = store.counts()
                    latencies.append(time.perf_counter() - started)
                    requests_made.append(counter.count - before)
                    started = time.perf_counter()
                    bench.session.get(view_url, params={"group": "true"}).raise_for_status()
                    bare.append(time.perf_counter() - started)
            correct = counts == {**{s: expected[s] for s in ("todo", "locked", "done", "error")}, "total": n}
            results.monitoring.append({"tokens": n, "warmup": warmup, "counts": median(latencies),
                                       "bare": median(bare), "requests": requests_made, "correct": correct,
                                       "result": counts})
    finally:
        bench.drop(db)
    results.checks.append(("counts() makes exactly 1 HTTP request per call, at every N",
                           all(set(r["requests"]) == {1} for r in results.monitoring)))
    results.checks.append(("counts() returns the exact partition of the tokens, at every N",
                           all(r["correct"] for r in results.monitoring)))


def render_monitoring(results: Results) -> str:
    rows = [[fmt_n(r["tokens"]), fmt_ms(r["counts"]), fmt_ms(r["bare"]), f"{(r['counts'] - r['bare']) * 1000:+.1f}",
             f"{r['bare'] / r['tokens'] * 1e6:.0f}", ", ".join(sorted({str(c) for c in r["requests"]})),
             f"{r['warmup']:.2f}", " ".join(f"{k}={v}" for k, v in r["result"].items())]
            for r in results.monitoring]
    return "\n".join([
        "## b. Monitoring: `TokenStore.counts()`",
        "",
        f"Median of {results.plan.monitor_calls} calls after one warm-up call, on one database grown to each size "
        "(token-shaped documents written with bare `_bulk_docs`: 5% locked, 5% error, 20% done, 70% todo). "
        "\"bare reduce\" is the same `overview_view?group=true` GET made with a plain requests session, "
        "taking turns with `counts()`: the server's own time. Requests are counted with a response hook on "
        "`db.r_session`.",
        "",
        table(["tokens", "counts() ms", "bare reduce ms", "difference ms", "reduce µs per token",
               "HTTP requests per call", "first call s (index update)", "counts"], rows),
    ])


# --- c. claiming ----------------------------------------------------------------------


def fill_claim_database(bench: Bench, n: int):
    """A fresh database with ``n`` no-op tokens and their views already indexed, so the
    claiming runs do not pay for the first index build."""
    db = bench.fresh_database("claim")
    store = TokenStore(db, TOKEN_TYPE)
    store.ensure_design()
    report = store.create([standard_fields(TOKEN_TYPE, token_id(TOKEN_TYPE, OBSID, i)) for i in range(n)])
    if len(report.created) != n:
        raise RuntimeError(f"claim set-up: created {len(report.created)} tokens, expected {n}")
    store.counts()
    store.ids("todo")
    return db, store, [token_id(TOKEN_TYPE, OBSID, i) for i in range(n)]


def run_processes(commands: list[list[str]], cwd: Path, log_prefix: Path) -> tuple[float, list[tuple[int, str]]]:
    """Start every command at once and wait for all; (seconds, [(exit code, stdout)]).

    Their stderr goes to files next to ``log_prefix``. On an error or Ctrl-C
    the processes this function started are terminated, each by its own pid.
    """
    procs, logs = [], []
    started = time.perf_counter()
    try:
        for i, command in enumerate(commands):
            log = open(f"{log_prefix}-{i}.err", "wb")
            logs.append(log)
            procs.append(subprocess.Popen(command, cwd=cwd, env=worker_environment(), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=log, text=True))
        deadline = time.monotonic() + PROCESS_TIMEOUT
        outputs = []
        for proc in procs:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs.append((proc.returncode, out))
        return time.perf_counter() - started, outputs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for log in logs:
            log.close()


def ledger_counts(ledger: Path, ids: list[str]) -> tuple[int, int]:
    """(tokens run more than once, tokens never run), from the ledger every job appends to."""
    seen = collections.Counter(ledger.read_text().split()) if ledger.exists() else collections.Counter()
    return sum(1 for count in seen.values() if count > 1), sum(1 for i in ids if i not in seen)


def claim_lrt(bench: Bench, workers: int, n: int, run_dir: Path) -> dict:
    """``workers`` concurrent ``lrt worker`` processes on ``n`` no-op tokens."""
    db, store, ids = fill_claim_database(bench, n)
    ledger = run_dir / f"lrt-{workers}.ledger"
    command = [sys.executable, "-m", "lrt_workflow", "worker", "--url", bench.url, "--database", db.database_name,
               "--type", TOKEN_TYPE, "--command", f'echo "$LRT_TOKEN_ID" >> {shlex.quote(str(ledger))}',
               "--workdir", str(run_dir / "work")]
    try:
        seconds, outputs = run_processes([command] * workers, run_dir, run_dir / f"lrt-{workers}")
        processed = conflicts = 0
        errors = []
        for code, out in outputs:
            match = WORKER_REPORT.search(out or "")
            if code != 0 or not match:
                errors.append(f"exit {code}: {(out or '').strip()[-200:] or 'no report (see its .err log)'}")
            if match:
                processed += int(match.group(1))
                conflicts += int(match.group(3))
        twice, missed = ledger_counts(ledger, ids)
        done = store.counts()["done"]
    finally:
        bench.drop(db)
    return {"family": "lrt worker", "workers": workers, "tokens": n, "seconds": seconds, "processed": processed,
            "conflicts": conflicts, "twice": twice, "missed": missed, "done": done, "errors": errors}


def claim_picas(bench: Bench, workers: int, n: int, run_dir: Path) -> dict:
    """``workers`` concurrent picas ``RunActor`` processes on the same workload."""
    db, store, ids = fill_claim_database(bench, n)
    ledger = run_dir / f"picas-{workers}.ledger"
    command = [sys.executable, "-c", PICAS_ACTOR, bench.url, db.database_name, TOKEN_TYPE, str(ledger)]
    try:
        seconds, outputs = run_processes([command] * workers, run_dir, run_dir / f"picas-{workers}")
        processed = conflicts = 0
        errors = []
        for code, out in outputs:
            report = _last_json_line(out)
            if code != 0 or report is None:
                errors.append(f"exit {code}: no report (see its .err log)")
                continue
            processed += report["processed"]
            conflicts += report["conflicts"]
            if report["error"]:
                errors.append(report["error"])
        twice, missed = ledger_counts(ledger, ids)
        done = store.counts()["done"]
    finally:
        bench.drop(db)
    return {"family": "picas RunActor", "workers": workers, "tokens": n, "seconds": seconds, "processed": processed,
            "conflicts": conflicts, "twice": twice, "missed": missed, "done": done, "errors": errors}


def _last_json_line(text: str | None) -> dict | None:
    for line in reversed((text or "").splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    return None


def measure_claiming(bench: Bench, plan: Plan, results: Results) -> None:
    """Table c: our workers, then the picas client's, at each worker count."""
    run_dir = bench.workdir / "claims"
    run_dir.mkdir(exist_ok=True)
    have_picas = importlib.util.find_spec("picas") is not None
    for workers in plan.worker_counts:
        say(f"claiming: {workers} lrt workers on {plan.claim_tokens} tokens")
        results.claiming.append(claim_lrt(bench, workers, plan.claim_tokens, run_dir))
        say(f"claiming: {_claim_summary(results.claiming[-1])}")
        if have_picas:
            say(f"claiming: {workers} picas RunActors on {plan.picas_tokens} tokens")
            results.claiming.append(claim_picas(bench, workers, plan.picas_tokens, run_dir))
            say(f"claiming: {_claim_summary(results.claiming[-1])}")
    ours = [r for r in results.claiming if r["family"] == "lrt worker"]
    results.checks.append(("lrt workers: 0 tokens processed twice, at every worker count",
                           all(r["twice"] == 0 for r in ours)))
    results.checks.append(("lrt workers: 0 tokens missed, and every token done in the views",
                           all(r["missed"] == 0 and r["done"] == r["tokens"] for r in ours)))
    results.checks.append(("lrt workers: every worker exited 0 with its report",
                           all(not r["errors"] for r in ours)))
    if not have_picas:
        results.claiming.append({"family": "picas RunActor", "skipped": "the picas client is not installed "
                                 "(it is a test extra: pip install -e '.[test]')"})


def _claim_summary(row: dict) -> str:
    return (f"{row['family']} x{row['workers']}: {row['seconds']:.1f} s, {row['tokens'] / row['seconds']:.1f} tokens/s, "
            f"{row['conflicts']} conflicts, {row['twice']} twice, {row['missed']} missed"
            + (f", errors: {row['errors']}" if row["errors"] else ""))


def render_claiming(results: Results) -> str:
    plan = results.plan
    rows, notes = [], []
    for r in results.claiming:
        if "skipped" in r:
            notes.append(f"picas RunActor not measured: {r['skipped']}.")
            continue
        rows.append([r["family"], r["workers"], fmt_n(r["tokens"]), fmt_s(r["seconds"]),
                     f"{r['tokens'] / r['seconds']:.1f}", r["conflicts"], r["twice"], r["missed"],
                     fmt_n(r["done"]), len(r["errors"])])
        notes += [f"{r['family']} ×{r['workers']}: {e}" for e in r["errors"]]
    text = [
        "## c. Claiming: concurrent workers on no-op tokens",
        "",
        f"Each run: a fresh database of {fmt_n(plan.claim_tokens)} tokens (no attachments), views indexed "
        "beforehand, then all worker processes started at once; seconds run from the first start to the last exit "
        "(Python start-up included). Our workers run `python -m lrt_workflow worker` with the command "
        "`echo \"$LRT_TOKEN_ID\" >> ledger`; the picas `RunActor.process_task` appends the task id to its own "
        "ledger, sets `exit_code` = 0 and closes the token. *Conflicts* is the sum of the 409s the workers "
        "reported; *twice* counts ledger ids that appear more than once, *missed* the tokens never in the ledger; "
        "*done* is the `done` count of the views afterwards.",
        "",
        table(["worker", "processes", "tokens", "seconds", "tokens/s", "claim conflicts", "processed twice",
               "missed", "done in views", "worker errors"], rows),
    ]
    if notes:
        text += [""] + [f"- {note}" for note in notes]
    return "\n".join(text)


# --- d. Snakemake -----------------------------------------------------------------------


def measure_snakemake(bench: Bench, plan: Plan, results: Results) -> None:
    """Table d: Snakemake's overhead; only once there is a Snakefile, and not in --quick."""
    if not (ROOT / "Snakefile").exists():
        results.snakemake = {"skipped": "there is no Snakefile yet"}
        return
    if not plan.snakemake:
        results.snakemake = {"skipped": "not run in --quick mode"}
        return
    try:
        results.snakemake = snakemake_overhead(bench, plan.repeats)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        # The workflow is still being written: a failure here is reported, not fatal.
        results.snakemake = {"skipped": f"the workflow did not run ({error})"}


def snakemake_config(bench: Bench, database: str) -> str:
    """The demo observation (example/) against this run's server, as config.yaml text
    (JSON is YAML). Pilots and polling as shipped, except a 1 s poll interval."""
    config = {
        "srm_file": str(ROOT / "example" / "srm.txt"),
        "chunk_size": 10,
        "results_dir": "results",
        "token": {"type": "demo", "template": str(ROOT / "example" / "token.json"),
                  "attachments": [str(ROOT / "example" / "job.sh")]},
        "couchdb": {"url": bench.url, "database": database},
        "wait": {"poll_seconds": 1},
    }
    return json.dumps(config, indent=2) + "\n"


def run_snakemake(snakemake: str, folder: Path) -> tuple[float, list[str], str]:
    """One ``snakemake --profile profiles/local`` in ``folder``; (seconds, shell commands it ran, output).

    The profile prints every job's shell command, which is how the direct
    replay learns exactly what Snakemake ran. A failed run raises.
    """
    command = [snakemake, "-s", str(ROOT / "Snakefile"), "--directory", str(folder),
               "--profile", str(ROOT / "profiles" / "local")]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=folder, env=worker_environment(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT)
    seconds = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake exited {proc.returncode}: " + " | ".join(output.strip().splitlines()[-5:]))
    shell = [line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("Shell command:")]
    return seconds, [c for c in shell if c and c != "None"], output


def replay(commands: list[str], folder: Path) -> float:
    """Run Snakemake's shell commands ourselves, in its order, the pilots side by side as it ran them."""
    groups: list[list[str]] = []
    for command in commands:
        if " step pilot " in command and groups and " step pilot " in groups[-1][0]:
            groups[-1].append(command)
        else:
            groups.append([command])
    started = time.perf_counter()
    for group in groups:
        codes = [code for code, _ in run_processes([["/bin/bash", "-c", c] for c in group], folder, folder / "replay")[1]]
        if any(codes):
            raise RuntimeError(f"replaying {group[0][:80]}... exited {codes}")
    return time.perf_counter() - started


def snakemake_overhead(bench: Bench, repeats: int) -> dict:
    """The demo workflow under Snakemake, against the same steps run directly.

    Each repetition: a full run in a fresh folder on a fresh database; a second
    run there, which finds nothing to do; and the full run's shell commands
    replayed by hand in another fresh folder on another fresh database. The
    difference between the full run and the replay is what Snakemake adds.
    """
    snakemake = Path(sys.executable).with_name("snakemake")
    if not snakemake.exists():
        return {"skipped": f"there is no snakemake next to {sys.executable}"}
    full, again, direct, jobs = [], [], [], 0
    for i in range(repeats):
        say(f"snakemake: demo workflow, run {i + 1} of {repeats}")
        run_folder = bench.workdir / f"smk-{i}"
        replay_folder = bench.workdir / f"direct-{i}"
        for folder, database in ((run_folder, f"smk_{i}"), (replay_folder, f"direct_{i}")):
            folder.mkdir()
            (folder / "config.yaml").write_text(snakemake_config(bench, database))
        seconds, commands, _ = run_snakemake(str(snakemake), run_folder)
        full.append(seconds)
        jobs = len(commands) + 1  # and the target rule "all", which runs no command
        again.append(run_snakemake(str(snakemake), run_folder)[0])
        # The steps read the configuration snapshot the Snakefile writes; the replay's points at its own database.
        for snapshot in (run_folder / "results").glob("*/config.json"):
            target = replay_folder / snapshot.relative_to(run_folder)
            target.parent.mkdir(parents=True)
            data = json.loads(snapshot.read_text())
            data["couchdb"]["database"] = f"direct_{i}"
            target.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        direct.append(replay(commands, replay_folder))
    return {"repeats": repeats, "jobs": jobs, "full": median(full), "again": median(again), "direct": median(direct),
            "full_runs": full, "direct_runs": direct}


def render_snakemake(results: Results) -> str:
    info = results.snakemake
    if "skipped" in info:
        return "\n".join(["## d. Snakemake overhead", "", f"Not measured: {info['skipped']}."])
    overhead = info["full"] - info["direct"]
    return "\n".join([
        "## d. Snakemake overhead",
        "",
        f"The demo observation (`example/`: 51 subbands, 6 tokens, 2 local pilots running `example/job.sh`) "
        f"with `snakemake --profile profiles/local`, against the same {info['jobs'] - 1} shell commands "
        f"replayed directly in the same order (pilots side by side). Median of {info['repeats']}; "
        "each run in a fresh folder on a fresh database of this server.",
        "",
        table(["what", "seconds"], [
            ["Snakemake, full run", fmt_s(info["full"])],
            ["the same `lrt step` commands run directly", fmt_s(info["direct"])],
            ["Snakemake's overhead (difference)", f"{fmt_s(overhead)} ({overhead / info['jobs'] * 1000:.0f} ms "
                                                  f"per job over {info['jobs']} jobs)"],
            ["Snakemake again, nothing to do", fmt_s(info["again"])],
        ]),
    ])


# --- targets, environment, report -------------------------------------------------------------


def evaluate_targets(results: Results) -> None:
    """The issue's targets, each with the number that decides it."""
    targets = results.targets
    big = next((r for r in results.creation if r["tokens"] == 10_000), None)
    if big:
        targets += [
            {"target": "10,000 tokens with attachments created in ≤ 3 s", "measured": f"{fmt_s(big['lrt'])} s",
             "met": big["lrt"] <= 3.0},
            {"target": "lrt ≥ 50× faster than classic at 10,000", "measured": f"{big['classic'] / big['lrt']:.1f}×",
             "met": big["classic"] / big["lrt"] >= 50},
            {"target": "lrt within 1.5× of raw at 10,000", "measured": f"{big['lrt'] / big['raw']:.2f}×",
             "met": big["lrt"] / big["raw"] <= 1.5},
        ]
    else:
        targets.append({"target": "creation targets (10,000 tokens)", "measured": "not run at 10,000 (--quick)",
                        "met": None})
    if results.monitoring:
        most = max(max(r["requests"]) for r in results.monitoring)
        targets.append({"target": "counts(): one request per poll", "measured": f"at most {most} per call",
                        "met": most == 1})
        # "Not beyond the server's reduce": counts() costs what the bare reduce query costs,
        # give or take 10 ms or 10 %, whichever is more (single calls vary by more than that).
        worst = max(results.monitoring, key=lambda r: (r["counts"] - r["bare"]) / max(0.1, r["bare"]))
        within = all(r["counts"] - r["bare"] <= max(0.010, 0.10 * r["bare"]) for r in results.monitoring)
        targets.append({"target": "counts() latency grows with N no more than the server's reduce",
                        "measured": f"counts() ÷ bare reduce at most {worst['counts'] / worst['bare']:.2f} "
                                    f"({fmt_ms(worst['counts'])} vs {fmt_ms(worst['bare'])} ms at "
                                    f"{fmt_n(worst['tokens'])}); the reduce itself: "
                                    + ", ".join(f"{fmt_ms(r['bare'])} ms at {fmt_n(r['tokens'])}"
                                                for r in results.monitoring),
                        "met": within})
    four = next((r for r in results.claiming if r.get("family") == "lrt worker" and r["workers"] == 4), None)
    if four:
        targets.append({"target": "0 duplicate claims and 0 lost tokens with 4 workers",
                        "measured": f"{four['twice']} twice, {four['missed']} missed", "met":
                        four["twice"] == 0 and four["missed"] == 0})


def describe_environment(argv: Sequence[str]) -> dict:
    """What the numbers were measured on."""
    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = re.search(r"MemTotal:\s+(\d+)", meminfo)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    node = shutil.which("node")
    pouchdb = ROOT / "node_modules" / "pouchdb-server" / "package.json"
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": " ".join(["python", "benchmarks/bench.py", *argv]),
        "cpus": f"{os.cpu_count()} ({cpu.group(1).strip() if cpu else platform.processor() or 'unknown CPU'})",
        "memory": f"{int(mem_kb.group(1)) / 1024 / 1024:.1f} GiB" if mem_kb else "unknown",
        "os": platform.platform(),
        "python": platform.python_version(),
        "node": subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip() if node else "none",
        "pouchdb-server": json.loads(pouchdb.read_text())["version"] if pouchdb.exists() else "not installed",
        "load": "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        "packages": ", ".join(f"{p} {version(p)}" for p in ("lrt_workflow", "cloudant", "requests", "picas",
                                                             "snakemake")),
    }


def render(results: Results, elapsed: float, error: str | None = None) -> str:
    env = results.environment
    parts = [
        f"# lrt_workflow benchmarks ({results.plan.name} run)",
        "",
        f"- date: {env['date']}",
        f"- command: `{env['command']}` (wall time {elapsed:.0f} s)",
        f"- machine: {env['cpus']} CPUs, {env['memory']} memory, {env['os']}",
        f"- software: Python {env['python']}, Node.js {env['node']}, pouchdb-server {env['pouchdb-server']}; "
        f"{env['packages']}",
        f"- load average (1, 5, 15 min) before the run: {env['load']}"
    ]
    if "others" in env:
        other, share = env["others"]
        parts.append(f"- other processes on the machine used {other:.0f} CPU-seconds during the run "
                     f"({share:.0%} of its capacity){'' if share < 0.05 else ': the timings are perturbed'}")
    if error:
        parts += ["", f"**The run stopped early: {error}.** The tables below hold what was measured before."]
    if results.creation:
        parts += ["", render_creation(results)]
    if results.monitoring:
        parts += ["", render_monitoring(results)]
    if results.claiming:
        parts += ["", render_claiming(results)]
    if results.snakemake:
        parts += ["", render_snakemake(results)]
    if results.targets:
        parts += ["", "## Targets", "",
                  table(["target", "measured", "met"],
                        [[t["target"], t["measured"], {True: "yes", False: "**no**", None: "n/a"}[t["met"]]]
                         for t in results.targets])]
    if results.checks:
        parts += ["", "## Correctness checks", "",
                  table(["check", "result"], [[name, "pass" if ok else "**FAIL**"] for name, ok in results.checks])]
    return "\n".join(parts) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="toy sizes (200 tokens, 1 repeat, a small claim workload): checks that it all works")
    parser.add_argument("--out", metavar="FILE", help="also write the Markdown to FILE")
    return parser.parse_args(argv)


def _interrupt(signum, frame):
    # SIGTERM takes the same path as Ctrl-C, so the finally blocks stop the server and the workers.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> Results:
    """Run the benchmark; print (and with --out, write) the Markdown; return the results."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    results = Results(plan, environment=describe_environment(argv))
    started = time.monotonic()
    error = None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with tempfile.TemporaryDirectory(prefix="lrt-bench-") as workdir:
            bench = Bench(Path(workdir))
            meter = CpuMeter()
            try:
                bench.start()
                measure_creation(bench, plan, results)
                measure_batch_sizes(bench, plan, results)
                measure_monitoring(bench, plan, results)
                measure_claiming(bench, plan, results)
                measure_snakemake(bench, plan, results)
                evaluate_targets(results)
            except BaseException as exc:
                error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                results.environment["others"] = meter.others(bench.pid)
                bench.stop()
                results.markdown = render(results, time.monotonic() - started, error)
                print(results.markdown, flush=True)
                if args.out:
                    Path(args.out).write_text(results.markdown)
    finally:
        signal.signal(signal.SIGTERM, previous)
    say(f"done in {time.monotonic() - started:.0f} s" + ("" if results.ok else "; SOME CHECKS FAILED"))
    return results


if __name__ == "__main__":
    sys.exit(0 if main().ok else 1)
