"""Leases, heartbeats and the worker's guarantees, each race staged at its exact point.

A second client (plain HTTP on the same real server) writes at the moment
the race needs, through a store whose methods call a hook just before they
act. Nothing here relies on timing to make a race happen.
"""

import contextlib
import os
import signal
import time

import pytest
import requests
import project
from project import alive, wait_until

from lrt_workflow.couchdb.embedded import EmbeddedServer
from lrt_workflow.pilot import worker as worker_module
from lrt_workflow.pilot.worker import TIMEOUT_EXIT, Worker
from lrt_workflow.token import Token, TokenStore, modifiers, token_id


class HookedStore(TokenStore):
    """A TokenStore that runs ``hooks[name](*args)`` once, just before its method ``name`` acts.
    ``save`` and ``write`` take (when, hook): the hook fires on the first save (or bulk write)
    that ``when`` picks."""

    def __init__(self, db, token_type, **hooks):
        super().__init__(db, token_type)
        self.hooks = hooks

    def _fire(self, name, *args):
        hook = self.hooks.pop(name, None)
        if hook:
            hook(*args)

    def _fire_when(self, name, value):
        if self.hooks.get(name) and self.hooks[name][0](value):
            when, hook = self.hooks.pop(name)
            hook(value)

    def get(self, token_id):
        self._fire("get", token_id)
        return super().get(token_id)

    def fetch(self, ids, **kwargs):
        self._fire("fetch", ids)
        return super().fetch(ids, **kwargs)

    def save(self, doc):
        self._fire_when("save", doc)
        return super().save(doc)

    def write(self, docs):
        self._fire_when("write", docs)
        return super().write(docs)

    def stale_ids(self, lease_seconds, now=None):
        ids = super().stale_ids(lease_seconds, now)
        self._fire("after_stale_ids", ids)
        return ids


class SecondClient:
    """Another writer on the same database: the orchestrator, an operator or another worker."""

    def __init__(self, db):
        self.url = db.database_url
        self.session = db.r_session

    def get(self, token_id):
        return self.session.get(f"{self.url}/{token_id}").json()

    def change(self, token_id, **fields):
        doc = self.get(token_id)
        doc.update(fields)
        response = self.session.put(f"{self.url}/{token_id}", json=doc)
        assert response.status_code == 201, response.text
        return doc


def make_tokens(store, n=1, **fields):
    tokens = [Token(store.token_type, token_id(store.token_type, "L7", i), OBSID="L7", STARTSB=f"{i:03d}", **fields)
              for i in range(n)]
    store.create(tokens)
    return [t["_id"] for t in tokens]


@pytest.fixture
def plain_store(database):
    store = TokenStore(database, "pref")
    store.ensure_design()
    return store


def hooked(database, **hooks):
    return HookedStore(database, "pref", **hooks)


# --- claiming ------------------------------------------------------------------------


def test_a_claim_is_refused_when_another_writer_locked_the_token_after_the_view_was_read(plain_store, database, tmp_path):
    [tid] = make_tokens(plain_store)
    other = SecondClient(database)
    # The view has been read and listed the token as free; now, before the worker reads the
    # document, another worker locks it.
    store = hooked(database, fetch=lambda ids: other.change(tid, lock=int(time.time()), worker_id="other-worker",
                                                             hostname="elsewhere"))
    worker = Worker(store, "true", workdir=tmp_path)
    assert worker.claim() == []
    doc = plain_store.get(tid)
    assert (doc["worker_id"], doc["hostname"]) == ("other-worker", "elsewhere")  # their lock intact
    assert "history" not in doc  # this worker wrote nothing


def test_a_claim_saved_with_a_revision_that_changed_meanwhile_is_refused(plain_store, database, tmp_path):
    [tid] = make_tokens(plain_store)
    other = SecondClient(database)
    store = hooked(database, write=(lambda docs: any(doc.get("status") == "locked" for doc in docs),
                                    lambda docs: other.change(tid, lock=int(time.time()), worker_id="other-worker")))
    worker = Worker(store, "true", workdir=tmp_path)
    assert worker.claim() == []
    assert worker.report.conflicts == 1
    assert plain_store.get(tid)["worker_id"] == "other-worker"


def test_a_round_claims_the_tokens_still_free_and_leaves_the_one_taken_meanwhile(plain_store, database, tmp_path):
    ids = make_tokens(plain_store, 40)
    other = SecondClient(database)
    taken = {}

    def take_one(picked):  # between the view and the documents: another worker locks one of them
        taken["id"] = picked[0]
        other.change(picked[0], lock=int(time.time()), worker_id="other-worker")

    store = hooked(database, fetch=take_one)
    claimed = Worker(store, "true", workdir=tmp_path).claim(4)
    assert len(claimed) == 3 and taken["id"] not in [doc["_id"] for doc in claimed]
    assert plain_store.get(taken["id"])["worker_id"] == "other-worker"
    for doc in claimed:
        assert plain_store.get(doc["_id"])["lock"] > 0 and doc["_id"] in ids


def test_in_a_bulk_claim_each_token_lands_or_conflicts_on_its_own(plain_store, database, tmp_path):
    make_tokens(plain_store, 40)
    other = SecondClient(database)
    lost = {}

    def overtake_one(docs):  # after the documents were checked, before the bulk claim lands
        lost["id"] = docs[0]["_id"]
        other.change(docs[0]["_id"], lock=int(time.time()), worker_id="other-worker")

    store = hooked(database, write=(lambda docs: len(docs) == 4, overtake_one))
    worker = Worker(store, "true", workdir=tmp_path)
    claimed = worker.claim(4)
    assert len(claimed) == 3 and lost["id"] not in [doc["_id"] for doc in claimed]
    assert worker.report.conflicts == 1
    assert plain_store.get(lost["id"])["worker_id"] == "other-worker"
    assert all(plain_store.get(doc["_id"])["worker_id"] == worker.worker_id for doc in claimed)


# --- saving results --------------------------------------------------------------------


def test_a_result_lands_when_another_write_comes_between_the_workers_read_and_save(plain_store, database, tmp_path):
    [tid] = make_tokens(plain_store)
    other = SecondClient(database)
    # Just before the worker saves its result, the orchestrator writes to the token.
    store = hooked(database, save=(lambda doc: doc.get("status") == "done",
                                   lambda doc: other.change(tid, note="written by the orchestrator")))
    report = Worker(store, "echo result", workdir=tmp_path).run()
    assert report.processed == [tid]
    doc = plain_store.get(tid)
    assert doc["note"] == "written by the orchestrator"
    assert (doc["status"], doc["output"], doc["done"] > 0) == ("done", 0, True)
    assert plain_store.get_attachment(tid, "stdout.log") == b"result\n"
    assert [e["event"] for e in doc["history"]] == ["locked", "running", "done"]


def test_a_token_taken_over_by_another_worker_is_never_overwritten(plain_store, database, tmp_path):
    [tid] = make_tokens(plain_store)
    other = SecondClient(database)

    def take_over(doc):
        # The orchestrator reset the token and another worker claimed it.
        taken = modifiers.claim(modifiers.reset(other.get(tid)), worker_id="other-worker", hostname="elsewhere")
        assert other.session.put(f"{other.url}/{tid}", json=taken).status_code == 201

    store = hooked(database, save=(lambda doc: doc.get("status") == "done", take_over))
    report = Worker(store, "echo mine", workdir=tmp_path).run()
    assert report.processed == []
    doc = plain_store.get(tid)
    assert (doc["worker_id"], doc["status"], doc["done"]) == ("other-worker", "locked", 0)
    assert "stdout.log" not in doc.get("_attachments", {})


# --- tokens claimed ahead ----------------------------------------------------------------


def gated(gate, seconds=10):
    """A job that, the first time it runs, waits for ``gate`` to exist (at most ``seconds``, then fails)."""
    return (f"[ -e {gate}.first ] && exit 0; touch {gate}.first; "
            f"for i in $(seq {int(seconds * 20)}); do [ -e {gate} ] && exit 0; sleep 0.05; done; exit 1")


def claiming_ahead(store, command, tmp_path, **kwargs):
    """A worker whose next round claims several tokens, as after a run of short jobs."""
    worker = Worker(store, command, workdir=tmp_path / "work", **kwargs)
    worker.job_seconds = 0.01
    return worker


def test_the_heartbeat_renews_every_held_token_also_those_queued_behind_the_job(plain_store, database, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setattr(worker_module, "CLAIM_AHEAD_SECONDS", 60.0)  # no early give-back here
    ids = make_tokens(plain_store, 40)
    gate = tmp_path / "gate"
    writes = []
    # The first bulk write is the claim of 8; the second, the first heartbeat: it opens the gate.
    store = hooked(database, write=(lambda docs: writes.append([d["_id"] for d in docs]) or len(writes) == 2,
                                    lambda docs: gate.touch()))
    report = claiming_ahead(store, gated(gate), tmp_path, lease_seconds=2).run()
    assert sorted(report.processed) == sorted(ids) and not report.failed
    claim, beat = writes[0], writes[1]
    assert len(claim) > 1 and sorted(beat) == sorted(claim)  # the running token and every one behind it
    for tid in claim:
        doc = plain_store.get(tid)
        assert [e["event"] for e in doc["history"]] == ["locked", "running", "done"]  # never expired, never reset


def test_a_long_job_gives_back_the_tokens_queued_behind_it(plain_store, database, tmp_path, monkeypatch):
    monkeypatch.setattr(worker_module, "CLAIM_AHEAD_SECONDS", 0.5)
    ids = make_tokens(plain_store, 40)
    gate = tmp_path / "gate"
    given_back = {}

    def open_gate(docs):
        given_back["ids"] = [doc["_id"] for doc in docs]
        gate.touch()

    first_claim = []
    store = hooked(database, write=(lambda docs: first_claim.append(docs) or
                                    all(d["history"][-1]["event"] == "released" for d in docs), open_gate))
    ledger = tmp_path / "ledger"
    report = claiming_ahead(store, f'echo "$LRT_TOKEN_ID" >> {ledger}; {gated(gate)}', tmp_path).run()
    assert sorted(report.processed) == sorted(ids) and not report.failed
    assert len(given_back["ids"]) == len(first_claim[0]) - 1 > 0  # all but the one running
    assert sorted(ledger.read_text().split()) == sorted(ids)  # each ran once
    for tid in given_back["ids"]:
        events = plain_store.get(tid)["history"]
        assert [e["event"] for e in events] == ["locked", "released", "locked", "running", "done"]
        assert events[1]["reason"] == "its pilot is busy with a long job"


class LedgerStore(TokenStore):
    """A TokenStore that notes in ``ledger`` each result it has written, once the server took it."""

    def __init__(self, db, token_type, ledger):
        super().__init__(db, token_type)
        self.ledger = ledger

    def _note(self, docs, saved):
        with open(self.ledger, "a") as out:
            out.writelines(f"saved {doc['_id']}\n" for doc in docs if doc.get("done") and doc["_id"] in saved)

    def save(self, doc):
        rev = super().save(doc)
        self._note([doc], {doc["_id"]})
        return rev

    def write(self, docs):
        saved, conflicts = super().write(docs)
        self._note(docs, saved)
        return saved, conflicts


def test_each_result_is_saved_when_its_job_ends_before_the_next_job_starts(plain_store, database, tmp_path):
    ids = make_tokens(plain_store, 12)
    ledger = tmp_path / "ledger"
    store = LedgerStore(database, "pref", ledger)
    report = claiming_ahead(store, f'echo "ran $LRT_TOKEN_ID" >> {ledger}', tmp_path).run()
    assert sorted(report.processed) == sorted(ids)
    lines = ledger.read_text().split("\n")[:-1]
    # A pilot killed between two jobs loses no result: each is on the server before the next job runs.
    assert lines == [line for tid in report.processed for line in (f"ran {tid}", f"saved {tid}")]


def test_a_stop_signal_saves_the_finished_results_and_releases_the_running_and_queued_tokens(plain_store, tmp_path):
    make_tokens(plain_store, 40)
    marker = tmp_path / "first-done"
    # The first job ends well; the second stops its own pilot, as a batch system would: SIGTERM to
    # the worker's process. The first one's result was saved when it ended.
    command = f"if [ -e {marker} ]; then kill -TERM $PPID; sleep 30; else touch {marker}; fi"
    report = claiming_ahead(plain_store, command, tmp_path).run()
    assert report.released and len(report.processed) == 1
    docs = [plain_store.get(tid) for tid in plain_store.all_ids()]
    assert [doc["_id"] for doc in docs if doc["lock"] and not doc["done"]] == []
    touched = [doc for doc in docs if doc.get("history")]
    assert len(touched) > 2
    assert [doc["_id"] for doc in touched if doc["status"] == "done"] == report.processed
    assert all([e["event"] for e in doc["history"]] == ["locked", "released"]
               for doc in touched if doc["_id"] not in report.processed)
    assert plain_store.counts()["todo"] == 39


# --- resetting stale tokens ---------------------------------------------------------------


def locked_token(store, *, lock, heartbeat=None, scrub_count=0):
    [tid] = make_tokens(store, scrub_count=scrub_count)
    doc = store.get(tid)
    modifiers.claim(doc, worker_id="w", hostname="h", now=lock)
    if heartbeat is None:
        del doc["heartbeat"]  # as the picas client's workers leave it
    else:
        doc["heartbeat"] = heartbeat
    store.save(doc)
    return tid


def test_staleness_is_judged_by_the_heartbeat(plain_store):
    now = time.time()
    tid = locked_token(plain_store, lock=now - 1000, heartbeat=now - 5)
    assert plain_store.stale_ids(100, now) == []
    assert plain_store.reset_stale(100, now) == []
    assert plain_store.stale_ids(100, now + 200) == [tid]


def test_tokens_without_a_heartbeat_are_judged_by_their_claim(plain_store):
    now = time.time()
    tid = locked_token(plain_store, lock=now - 1000)
    assert plain_store.reset_stale(100, now) == [tid]
    doc = plain_store.get(tid)
    assert (doc["lock"], doc["scrub_count"], doc["history"][-1]["event"]) == (0, 1, "expired")


def test_a_token_that_finishes_between_reset_stales_read_and_write_stays_done(plain_store, database):
    now = time.time()
    tid = locked_token(plain_store, lock=now - 1000, heartbeat=now - 1000)
    other = SecondClient(database)
    store = hooked(database, after_stale_ids=lambda ids: other.change(tid, done=int(now), output=0, status="done"))
    assert store.reset_stale(100, now) == []
    doc = plain_store.get(tid)
    assert (doc["status"], doc["done"], doc["scrub_count"]) == ("done", int(now), 0)


def test_a_heartbeat_between_reset_stales_read_and_write_keeps_the_token(plain_store, database):
    now = time.time()
    tid = locked_token(plain_store, lock=now - 1000, heartbeat=now - 1000)
    other = SecondClient(database)
    store = hooked(database, after_stale_ids=lambda ids: other.change(tid, heartbeat=int(now)))
    assert store.reset_stale(100, now) == []
    assert plain_store.get(tid)["worker_id"] == "w"


def test_a_token_whose_lease_ran_out_max_scrub_times_goes_to_error_with_a_reason(plain_store):
    now = time.time()
    tid = locked_token(plain_store, lock=now - 1000, heartbeat=now - 1000, scrub_count=2)
    assert plain_store.reset_stale(100, now, max_scrub=2) == [tid]
    doc = plain_store.get(tid)
    assert doc["status"] == "error" and doc["done"] > 0 and doc["output"] == modifiers.NO_EXIT_CODE
    assert "longer than the lease of 100 s" in doc["error_reason"] and "after 2 resets" in doc["error_reason"]
    assert plain_store.counts()["error"] == 1


# --- live and dead workers ------------------------------------------------------------------


def test_a_job_longer_than_its_lease_is_never_reset_while_its_heartbeat_is_fresh(
        plain_store, couchdb_server, database, tmp_path, lrt_worker):
    [tid] = make_tokens(plain_store)
    gate = tmp_path / "gate"
    lease = 2.0
    worker = lrt_worker("--type", "pref", "--lease-seconds", str(lease),
                        "--command", f"while [ ! -e {gate} ]; do sleep 0.05; done; echo ran >> {tmp_path}/ledger")
    try:
        claimed = wait_until(lambda: plain_store.get(tid)["status"] == "running" and plain_store.get(tid)["lock"])
        # The orchestrator looks for stale tokens all through three leases.
        while time.time() < claimed + 3 * lease + 1:
            assert plain_store.reset_stale(lease) == []
        gate.touch()
        worker.communicate(timeout=30)
    finally:
        worker.kill()
    doc = plain_store.get(tid)
    assert (doc["status"], doc["scrub_count"]) == ("done", 0)
    assert doc["heartbeat"] > doc["lock"] + 2 * lease
    assert (tmp_path / "ledger").read_text() == "ran\n"


def test_a_dead_workers_token_is_reset_once_its_lease_is_over(plain_store, couchdb_server, database, tmp_path, lrt_worker):
    [tid] = make_tokens(plain_store)
    worker = lrt_worker("--type", "pref", "--lease-seconds", "2",
                        "--command", f"echo $$ > {tmp_path}/job.pid; sleep 60")
    wait_until(lambda: (tmp_path / "job.pid").exists() and (tmp_path / "job.pid").read_text().strip())
    worker.kill()
    worker.wait()
    job = int((tmp_path / "job.pid").read_text())
    wait_until(lambda: not os.path.exists(f"/proc/{job}"), timeout=10)  # the job died with its worker
    last = modifiers.last_sign_of_life(plain_store.get(tid))
    assert plain_store.reset_stale(2, now=last + 1.5) == []  # still within the lease
    assert plain_store.reset_stale(2, now=last + 2.5) == [tid]
    doc = plain_store.get(tid)
    assert (doc["status"], doc["lock"], doc["scrub_count"]) == ("todo", 0, 1)


def test_the_children_of_a_dead_workers_job_die_with_it(plain_store, tmp_path, lrt_worker):
    make_tokens(plain_store)
    worker = lrt_worker("--type", "pref", "--command",
                        f"echo $$ > {tmp_path}/job.pid; sleep 60 & echo $! > {tmp_path}/child.pid; wait")
    child = int(wait_until(lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip()))
    job = int((tmp_path / "job.pid").read_text())
    try:
        worker.kill()
        worker.wait()
        wait_until(lambda: not alive(job), timeout=10)  # the job itself dies with its worker
        wait_until(lambda: not alive(child), timeout=5)  # and so must what it started
    finally:
        with contextlib.suppress(ProcessLookupError):  # the job's process group: what is left of it
            os.killpg(job, signal.SIGKILL)


def test_a_worker_that_cannot_renew_its_lease_stops_the_job_before_the_lease_runs_out(tmp_path, lrt_worker):
    server = EmbeddedServer(tmp_path / "db")
    state, _ = server.start()
    try:
        url = state.url.rstrip("/")
        requests.put(f"{url}/leases").raise_for_status()
        from lrt_workflow.couchdb import connect, open_database
        from lrt_workflow.couchdb.credentials import PicasCredentials

        store = TokenStore(open_database(connect(PicasCredentials(url=url)), "leases"), "pref")
        store.ensure_design()
        [tid] = make_tokens(store)
        lease = 4.0
        worker = lrt_worker("--type", "pref", "--lease-seconds", str(lease),
                            "--command", f"echo $$ > {tmp_path}/job.pid; sleep 60",
                            url=url, database_name="leases",
                            env={"PICAS_USER": "", "PICAS_PASSWORD": ""})  # its own embedded server
        try:
            wait_until(lambda: (tmp_path / "job.pid").exists() and (tmp_path / "job.pid").read_text().strip())
            job = int((tmp_path / "job.pid").read_text())
            wait_until(lambda: store.get(tid)["heartbeat"] > store.get(tid)["lock"])  # one beat landed
            server.stop()  # the database goes away: no heartbeat can be saved any more
            stopped = time.time()
            wait_until(lambda: not os.path.exists(f"/proc/{job}"), timeout=lease)
            job_gone = time.time()
            _, err = worker.communicate(timeout=60)
        finally:
            worker.kill()
        assert job_gone - stopped < lease  # the job was dead before anyone could reset its token
        assert worker.returncode != 0
        assert "stopped the job of token" in err or "cannot reach CouchDB" in err
    finally:
        server.stop()


def test_max_token_seconds_from_config_yaml_stops_a_pilots_long_job(plain_store, couchdb_server, database, tmp_path,
                                                                    runs):
    [tid] = make_tokens(plain_store)
    project.one_step(tmp_path, command="sleep 60", token={"type": "pref"}, pilots={"max_token_seconds": 1},
                     wait={"max_scrub": 0}, couchdb={"url": couchdb_server.url, "database": database.database_name})
    started = time.monotonic()
    runs.lrt(tmp_path, "step", "pilot", "--config", "config.yaml", "--out", "pilot.json",
             env=couchdb_server.environment(), check=True, timeout=50)
    assert time.monotonic() - started < 30
    doc = plain_store.get(tid)
    assert (doc["status"], doc["output"]) == ("error", TIMEOUT_EXIT)


def test_signals_stop_the_job_and_release_the_token(plain_store, couchdb_server, database, tmp_path, lrt_worker):
    [tid] = make_tokens(plain_store)
    worker = lrt_worker("--type", "pref", "--command", f"echo $$ > {tmp_path}/job.pid; sleep 60")
    wait_until(lambda: (tmp_path / "job.pid").exists() and (tmp_path / "job.pid").read_text().strip())
    worker.send_signal(signal.SIGINT)
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 143, err
    doc = plain_store.get(tid)
    assert (doc["status"], doc["lock"], doc["scrub_count"]) == ("todo", 0, 0)
    assert doc["history"][-1]["event"] == "released"
