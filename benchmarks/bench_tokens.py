"""Creating tokens and counting them: ``TokenStore.create`` against the server's floor, and
``TokenStore.counts()`` for one observation and step as the database grows."""

from __future__ import annotations

import collections
import itertools
import json
import re
import statistics
import time
import urllib.parse
from typing import Callable

import requests

from bench_common import OBSID, TOKEN_TYPE, Bench, fmt_ms, fmt_n, fmt_s, median, say, table
from lrt_workflow.couchdb.store import BATCH_SIZE
from lrt_workflow.token import TokenHandler, TokenSet, TokenStore, token_id
from lrt_workflow.token.builders import TokenDictBuilder
from lrt_workflow.token.model import inline_attachment, standard_fields

LINKS_PER_TOKEN = 8  # 8 srm URLs of 118 bytes: a ~1 KB srm.txt per token
LINK = ("srm://srm.grid.sara.nl:8443/pnfs/grid.sara.nl/data/lofar/ops/projects/lc2_038/229507/"
        "L229507_SB{sb:03d}_uv.dppp.MS_3d78b8f1.tar")
#: A token configuration of the usual shape (compare example/one-step/token.json).
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


# --- a. creation -------------------------------------------------------------------------------


def chunk_links(count: int) -> dict[str, list[str]]:
    """``count`` chunks of srm URLs keyed by first subband, as `slice_dicts` makes them."""
    return {str(i * LINKS_PER_TOKEN): [LINK.format(sb=(i * LINKS_PER_TOKEN + j) % 1000) for j in range(LINKS_PER_TOKEN)]
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
    attachment: a padding field takes its place."""
    docs = []
    for doc, data in pairs:
        target = len(json.dumps({**doc, "_attachments": {"srm.txt": inline_attachment(data)}}))
        bare = len(json.dumps({**doc, "pad": ""}))
        docs.append({**doc, "pad": "x" * max(0, target - bare)})
    return docs


def create_raw(session: requests.Session, db_url: str, docs: list[dict], batch: int = RAW_BATCH) -> int:
    """Bare ``_bulk_docs`` POSTs, one at a time; returns how many documents the server saved."""
    saved = 0
    for start in range(0, len(docs), batch):
        response = session.post(f"{db_url}/_bulk_docs", json={"docs": docs[start:start + batch]})
        response.raise_for_status()
        saved += sum(1 for row in response.json() if "rev" in row and "error" not in row)
    return saved


def create_raw_with_design(bench: Bench, db, docs: list[dict]) -> int:
    """`create_raw` into a token database: its design document first, as every token database has one
    (`create_dict_tokens` writes it too). pouchdb-server stores documents slower when a design document
    is there, so without it the floor would hold the server's work to a lower standard than ours."""
    TokenStore(db, TOKEN_TYPE).ensure_design()
    return create_raw(bench.session, db.database_url, docs, BATCH_SIZE)


def create_classic(session: requests.Session, db_url: str, pairs: list[tuple[dict, bytes]]) -> int:
    """The original tools' pattern: PUT the token, then PUT its attachment with ``?rev=``."""
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


def create_lrt(db, chunks: dict[str, list[str]]) -> int:
    """The project's public API, as a user calls it; returns how many tokens it created."""
    handler = TokenHandler(TOKEN_TYPE, database=db)
    report = TokenSet(handler, tok_config=TEMPLATE).create_dict_tokens(chunks, id_append=OBSID, file_upload="srm.txt")
    return len(report.created)


def timed_runs(bench: Bench, repeats: int, actions: dict[str, tuple[Callable[[object], int], int]]
               ) -> dict[str, tuple[list[float], list[int]]]:
    """Time each ``action(fresh database)`` ``repeats`` times: {name: (seconds per run, documents saved)}.

    The actions take turns (one run of each, then the next round), so a drift in the
    machine's speed touches them all alike. Only the action is timed. A run that saves
    fewer documents than expected is an error, not a fast result.
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


def same_documents(bench: Bench, pairs: list[tuple[dict, bytes]]) -> bool:
    """True when the API stores, field for field, the documents the raw and floor runs store."""
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


def measure_creation(bench: Bench, plan) -> tuple[list[dict], bool]:
    """Table a: four ways of creating N tokens, each run on a fresh database, taking turns."""
    biggest = max(plan.creation_sizes)
    say(f"creation: warm-up at {biggest}")
    chunks = chunk_links(biggest)
    pairs = token_documents(chunks)
    inline = inline_documents(pairs)
    timed_runs(bench, 1, {"warmfloor": (lambda db: create_raw(bench.session, db.database_url, inline, BATCH_SIZE),
                                        biggest),
                          "warmlrt": (lambda db: create_lrt(db, chunks), biggest)})
    rows = []
    for n in plan.creation_sizes:
        chunks = chunk_links(n)
        pairs = token_documents(chunks)
        raw, inline = raw_documents(pairs), inline_documents(pairs)
        sample = min(n, plan.classic_sample)
        say(f"creation N={n}: raw, floor, classic (on {sample}) and lrt_workflow, {plan.repeats} round(s)")
        timings = timed_runs(bench, plan.repeats, {
            "raw": (lambda db: create_raw(bench.session, db.database_url, raw), n),
            "floor_bare": (lambda db: create_raw(bench.session, db.database_url, inline, BATCH_SIZE), n),
            "floor": (lambda db: create_raw_with_design(bench, db, inline), n),
            "classic": (lambda db: create_classic(bench.session, db.database_url, pairs[:sample]), sample),
            "lrt": (lambda db: create_lrt(db, chunks), n),
        })
        row = {"tokens": n, "doc_bytes": round(statistics.mean(len(json.dumps(doc)) for doc in raw)),
               "srm_bytes": len(pairs[0][1]), "classic_sample": sample}
        for name, (runs, saved) in timings.items():
            row[name] = median(runs) * (n / sample if name == "classic" else 1)
            row[f"{name}_runs"] = runs
            row[f"{name}_created"] = saved
        say(f"creation N={n}: raw {row['raw']:.2f} s, floor {row['floor']:.2f} s (empty database "
            f"{row['floor_bare']:.2f} s), lrt {row['lrt']:.2f} s "
            f"({row['lrt'] / row['floor']:.2f}× the floor), classic {row['classic']:.1f} s")
        rows.append(row)
    return rows, same_documents(bench, token_documents(chunk_links(3)))


def render_creation(servers: list[str], results: dict, plan) -> str:
    first = next(iter(results.values()))["creation"][0]
    rows = []
    for n in plan.creation_sizes:
        for method, key, how in (
                ("raw: bare `_bulk_docs`, no attachments", "raw", f"POSTs of {RAW_BATCH}, padded to the tokens' size"),
                ("bare `_bulk_docs` of the tokens, srm.txt inline, into an empty database", "floor_bare",
                 f"POSTs of {BATCH_SIZE}, one at a time, no client work"),
                ("**floor**: the same into a token database (its design document written first)", "floor",
                 f"the design document, then POSTs of {BATCH_SIZE}, one at a time"),
                ("classic: document PUT + attachment PUT", "classic", "2 PUTs per token"),
                ("lrt_workflow: `TokenSet.create_dict_tokens`", "lrt",
                 f"`_bulk_docs` of {BATCH_SIZE}, srm.txt inline, 2 in flight")):
            cells = []
            for server in servers:
                row = next(r for r in results[server]["creation"] if r["tokens"] == n)
                note = "" if key != "classic" or row["classic_sample"] == n else "*"
                cells.append(f"{fmt_s(row[key])}{note} ({fmt_n(n / row[key])}/s)")
            rows.append([fmt_n(n), method, *cells, how])
        ratio = [f"**{next(r for r in results[s]['creation'] if r['tokens'] == n)['lrt'] / next(r for r in results[s]['creation'] if r['tokens'] == n)['floor']:.2f}×**"
                 for s in servers]
        rows.append([fmt_n(n), "lrt ÷ floor", *ratio, "target ≤ 1.1× at 10,000"])
    return "\n".join([
        "## a. Creating tokens, each with a ~1 KB `srm.txt`",
        "",
        f"Seconds (tokens/s) are the median of {plan.repeats} run(s), each on a fresh database, the methods "
        f"taking turns. Every token has an `srm.txt` of {first['srm_bytes']} bytes; with it inline a token is "
        f"{first['doc_bytes']} bytes of JSON. *Classic is timed on {plan.classic_sample} tokens and scaled "
        "linearly. The floor writes the design document first, as `create_dict_tokens` does: tokens live in a "
        "database with their views, and a server may store documents slower there (pouchdb-server does; compare "
        "the row above it).",
        "",
        table(["tokens", "method", *servers, "how"], rows),
    ])


# --- b. counting -----------------------------------------------------------------------------------


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


def monitor_document(index: int, now: int, obsid: str = OBSID) -> tuple[dict, str]:
    """A token-shaped document in one of the four states (most todo, some of each other)."""
    doc = standard_fields(TOKEN_TYPE, token_id(TOKEN_TYPE, obsid, index))
    doc["OBSID"] = obsid
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


def measure_counting(bench: Bench, plan) -> list[dict]:
    """Table b: ``counts()`` of one observation and step, on one database grown to each size.

    The documents are written with bare ``_bulk_docs`` (the views read only ``type``,
    ``OBSID``, ``lock``, ``done``, ``output`` and ``status``), plus a tenth as many of another
    observation, which the counts must leave out. The first call after growing pays for the
    index update and is reported apart; then each call is timed next to the same reduce
    query made with a bare requests session: the server's own time.
    """
    db = bench.fresh_database("count")
    store = TokenStore(db, TOKEN_TYPE, obsid=OBSID)
    store.ensure_design()
    start, end = json.dumps([OBSID]), json.dumps([OBSID, {}])
    view_url = f"{db.database_url}/{store.design_id}/_view/by_observation"
    expected = collections.Counter()
    now = int(time.time())
    have, rows = 0, []
    try:
        for n in plan.monitor_sizes:
            say(f"counting: growing the database to {n} tokens of {OBSID}")
            while have < n:
                batch = [monitor_document(i, now) for i in range(have, min(n, have + RAW_BATCH))]
                others = [monitor_document(i, now, "L000001")[0] for i in range(have, have + len(batch), 10)]
                create_raw(bench.session, db.database_url, [doc for doc, _ in batch] + others)
                expected.update(state for _, state in batch)
                have += len(batch)
            started = time.perf_counter()
            store.counts()
            warmup = time.perf_counter() - started
            calls = plan.monitor_calls if n <= 10_000 else plan.monitor_calls_large
            say(f"counting N={n}: first counts() (index update) {warmup:.2f} s; timing {calls} calls")
            latencies, requests_made, bare = [], [], []
            with RequestCounter(db.r_session) as counter:
                for _ in range(calls):
                    before = counter.count
                    started = time.perf_counter()
                    counts = store.counts()
                    latencies.append(time.perf_counter() - started)
                    requests_made.append(counter.count - before)
                    started = time.perf_counter()
                    bench.session.get(view_url, params={"group": "true", "startkey": start, "endkey": end}
                                      ).raise_for_status()
                    bare.append(time.perf_counter() - started)
            correct = counts == {**{s: expected[s] for s in ("todo", "locked", "done", "error")}, "total": n}
            rows.append({"tokens": n, "warmup": warmup, "counts": median(latencies), "bare": median(bare),
                         "requests": requests_made, "correct": correct, "result": counts, "calls": calls})
    finally:
        bench.drop(db)
    return rows


def render_counting(servers: list[str], results: dict, plan) -> str:
    rows = []
    for n in plan.monitor_sizes:
        cells = []
        for server in servers:
            r = next(r for r in results[server]["counting"] if r["tokens"] == n)
            cells += [f"{fmt_ms(r['counts'])} ({fmt_ms(r['bare'])})", ", ".join(sorted({str(c) for c in r["requests"]})),
                      f"{r['warmup']:.2f}"]
        rows.append([fmt_n(n), *cells])
    header = ["tokens"]
    for server in servers:
        header += [f"{server}: counts() ms (bare reduce)", "requests per call", "first call s (index update)"]
    return "\n".join([
        "## b. Counting: `TokenStore(obsid=...).counts()` for one observation and step",
        "",
        f"Median of {plan.monitor_calls} calls ({plan.monitor_calls_large} from 50,000 tokens on) after one "
        "warm-up call, on one database grown to each size (token-shaped documents: 5% locked, 5% error, 20% done, "
        "70% todo, and a tenth as many of another observation, which the counts leave out). \"bare reduce\" is the "
        "same `by_observation?group=true` range query made with a plain requests session, taking turns with "
        "`counts()`: the server's own time. Requests are counted with a response hook on `db.r_session`.",
        "",
        table(header, rows),
    ])
