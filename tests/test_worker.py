"""The pilot worker against a real embedded server, with real jobs."""

import os
import signal
import time
from collections import Counter

import pytest
from project import wait_until

from lrt_workflow.pilot import TIMEOUT_EXIT, Worker, job_environment
from lrt_workflow.token import Token, TokenStore, token_id

VARIABLES = {
    "_token_keys": {"$OBSID": "OBSID", "$STARTSB": "STARTSB", "$SETTINGS": "settings"},
    "_attachments": {"$SRMFILE": "srm.txt", "$PARSET": "conf/step.parset"},
}


def fill(store, n, **fields):
    tokens = []
    for i in range(n):
        token = Token(store.token_type, token_id(store.token_type, "L7", i), OBSID="L7", STARTSB=f"{i:03d}",
                      settings={"location": "here"}, **{"config.json": {"variables": VARIABLES}}, **fields)
        tokens.append(token)
    files = {t["_id"]: {"srm.txt": f"srm://{t['_id']}\n".encode(), "conf/step.parset": b"k=v\n"} for t in tokens}
    store.create(tokens, files)
    return [t["_id"] for t in tokens]


@pytest.fixture
def store(database):
    store = TokenStore(database, "pref")
    store.ensure_design()
    return store


def worker(store, command, tmp_path, **kwargs):
    return Worker(store, command, workdir=tmp_path / "work", **kwargs)


def test_worker_runs_every_token_with_its_keys_and_attachments(store, tmp_path, monkeypatch):
    monkeypatch.setenv("PICAS_PASSWORD", "never-show-me")
    ids = fill(store, 5)
    command = 'echo "$OBSID $STARTSB $SETTINGS"; cat "$SRMFILE" "$PARSET"; env | grep -c PICAS_PASSWORD; pwd'
    report = worker(store, command, tmp_path).run()
    assert sorted(report.processed) == sorted(ids) and not report.failed
    assert store.counts() == {"todo": 0, "locked": 0, "done": 5, "error": 0, "total": 5}
    doc = store.get(ids[2])
    assert (doc["output"], doc["exit_code"], doc["status"]) == (0, 0, "done")
    assert doc["done"] >= doc["lock"] > 0 and {"locked", "running", "done"} <= set(doc["times"])
    stdout = store.get_attachment(ids[2], "stdout.log").decode().splitlines()
    assert stdout[0] == 'L7 002 {"location": "here"}'
    assert stdout[1] == f"srm://{ids[2]}" and stdout[2] == "k=v"
    assert stdout[3] == "0"  # the worker's password is not in the job's environment
    assert "lrt-worker" not in stdout[4] or (tmp_path / "work").as_posix() in stdout[4]
    assert not list((tmp_path / "work").iterdir())  # work folders are cleaned up


def test_failing_job_is_recorded_as_error_with_its_logs(store, tmp_path):
    ids = fill(store, 2)
    report = worker(store, 'echo oops >&2; exit 3', tmp_path).run()
    assert sorted(report.failed) == sorted(ids)
    doc = store.get(ids[0])
    assert (doc["output"], doc["exit_code"], doc["status"]) == (3, 3, "error")
    assert store.get_attachment(ids[0], "stderr.log") == b"oops\n"
    assert store.counts()["error"] == 2


def test_time_limit_kills_the_whole_process_group(store, tmp_path):
    fill(store, 1)
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    report = worker(store, f"sleep 120 & echo $! > {pidfile}; wait", tmp_path, max_token_seconds=1).run()
    assert time.monotonic() - started < 30
    doc = store.get(report.processed[0])
    assert doc["output"] == TIMEOUT_EXIT and doc["status"] == "error"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}"), "the job's background child survived"
    assert b"max_token_seconds" in store.get_attachment(doc["_id"], "stderr.log")


def test_heartbeat_renews_the_lease(store, tmp_path):
    ids = fill(store, 1)
    w = worker(store, "sleep 2.5", tmp_path, heartbeat_seconds=0.5)
    w.run()
    doc = store.get(ids[0])
    assert doc["heartbeat"] > doc["lock"]


def test_job_environment_maps_keys_and_attachment_names(tmp_path):
    token = {"_id": "t", "type": "pref", "OBSID": "L1", "config.json": {"variables": VARIABLES}}
    env = job_environment(token, tmp_path, base={"PATH": "/bin", "PICAS_PASSWORD": "x", "PICAS_USER": "u"})
    assert env["OBSID"] == "L1" and env["SRMFILE"] == "srm.txt" and env["PARSET"] == "conf_step.parset"
    assert env["STARTSB"] == "" and env["LRT_TOKEN_ID"] == "t"
    assert "PICAS_PASSWORD" not in env and "PICAS_USER" not in env


@pytest.mark.parametrize("workers, tokens", [(4, 120), (8, 200)])
def test_concurrent_workers_process_every_token_exactly_once(store, couchdb_server, database, tmp_path,
                                                             workers, tokens, lrt_worker):
    ids = fill(store, tokens)
    ledger = tmp_path / "ledger.txt"
    command = f'echo "$LRT_TOKEN_ID" >> {ledger}'
    processes = [lrt_worker("--type", "pref", "--command", command,
                          "--workdir", str(tmp_path / f"w{i}")) for i in range(workers)]
    for process in processes:
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
    runs = Counter(ledger.read_text().split())
    assert sorted(runs) == sorted(ids)
    assert max(runs.values()) == 1
    assert store.counts() == {"todo": 0, "locked": 0, "done": tokens, "error": 0, "total": tokens}


def test_sigterm_releases_the_token_at_once(store, couchdb_server, database, tmp_path, lrt_worker):
    ids = fill(store, 1)
    process = lrt_worker("--type", "pref", "--command", "sleep 60")
    wait_until(lambda: store.get(ids[0])["status"] == "running")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    doc = store.get(ids[0])
    assert (doc["lock"], doc["done"], doc["status"], doc["hostname"]) == (0, 0, "todo", "")
    assert store.counts()["todo"] == 1
    assert f"released token {ids[0]}" in out


def test_worker_serves_tokens_made_the_picas_way(database, couchdb_server, tmp_path, lrt_worker):
    picas_clients = pytest.importorskip("picas.clients")
    from picas.documents import Task

    user, password = couchdb_server.auth or (None, "")
    client = picas_clients.CouchDB(url=couchdb_server.url.rstrip("/"), db=database.database_name,
                                   username=user, password=password)
    client.add_view("todo", 'function(doc) { if (doc.type == "token") { if (doc.lock == 0 && doc.done == 0) '
                            '{ emit(doc._id, doc._id); } } }')
    client.add_view("done", 'function(doc) { if (doc.type == "token") { if (doc.lock > 0 && doc.done > 0 '
                            '&& parseInt(doc.exit_code) == 0) { emit(doc._id, doc._id); } } }')
    tasks = [Task({"_id": f"task{i}", "input": f"value {i}", "type": "token"}) for i in range(3)]
    client.save_documents(tasks)
    process = lrt_worker("--design", "Monitor", "--command", 'echo "$LRT_TOKEN_ID"')
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "processed 3 tokens (0 failed)" in out
    done = sorted(row.id for row in client.view("done"))
    assert done == ["task0", "task1", "task2"]
    assert client.get("task1")["exit_code"] == 0
