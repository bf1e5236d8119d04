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
from lrt_workflow.pilot.worker import TIMEOUT_EXIT, Worker
from lrt_workflow.token import Token, TokenStore, modifiers, token_id


class HookedStore(TokenStore):
    """A TokenStore that runs ``hooks[name](*args)`` once, just before its method ``name`` acts."""

    def __init__(self, db, token_type, **hooks):
        super().__init__(db, token_type)
        self.hooks = hooks

    def _fire(self, name, *args):
        hook = self.hooks.pop(name, None)
        if hook:
            hook(*args)

    def get(self, token_id):
        self._fire("get", token_id)
        return super().get(token_id)

    def save(self, doc):
        if self.hooks.get("save") and self.hooks["save"][0](doc):  # (when, hook): fire on the save `when` picks
            when, hook = self.hooks.pop("save")
            hook(doc)
        return super().save(doc)

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
    store = hooked(database, get=lambda _id: other.change(tid, lock=int(time.time()), worker_id="other-worker",
                                                           hostname="elsewhere"))
    worker = Worker(store, "true", workdir=tmp_path)
    assert worker.claim() is None
    doc = plain_store.get(tid)
    assert (doc["worker_id"], doc["hostname"]) == ("other-worker", "elsewhere")  # their lock intact
    assert "history" not in doc  # this worker wrote nothing


def test_a_claim_saved_with_a_revision_that_changed_meanwhile_is_refused(plain_store, database, tmp_path):
    [tid] = make_tokens(plain_store)
    other = SecondClient(database)
    store = hooked(database, save=(lambda doc: doc.get("status") == "locked",
                                   lambda doc: other.change(tid, lock=int(time.time()), worker_id="other-worker")))
    worker = Worker(store, "true", workdir=tmp_path)
    assert worker.claim() is None
    assert worker.report.conflicts == 1
    assert plain_store.get(tid)["worker_id"] == "other-worker"


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
