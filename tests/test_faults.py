"""Faults injected into real runs: killed orchestrators and pilots, a database outage, concurrent runs.

After each fault the README's rerun command (``lrt run``) must converge to
the same state as an uninterrupted run: one token per chunk, all done, no
job run twice (every job appends its token id to a ledger), and an archive
holding every token.

The runs use their own embedded server, or the server of LRT_TEST_COUCHDB as
the usual PiCaS account (``workflow_couchdb`` in conftest.py); their project
folders and runs come from tests/project.py.
"""

import contextlib
import json
import os
import secrets
import signal
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest

import project
from lrt_workflow.config import validate_config
from lrt_workflow.couchdb.embedded import EmbeddedServer
from lrt_workflow.pipeline import step_settings
from lrt_workflow.steps import pilots, store_for
from lrt_workflow.steps.pilots import WaitFailed
from project import OBSID, wait_until
from servers import Account, ApacheCouchDB, Unavailable, find_tarball, kind, unavailable

pytestmark = pytest.mark.slow


def ledger_project(folder: Path, target, subbands=30, chunk_size=10, job_seconds=0.0, **sections) -> Path:
    """A one-step project whose job appends its token id to ``ledger.txt``; short leases."""
    command = f'sleep {job_seconds}; echo "$LRT_TOKEN_ID" >> {folder / "ledger.txt"}'
    sections["pilots"] = {"lease_seconds": 4, **sections.get("pilots", {})}
    project.one_step(folder, target, subbands=subbands, command=command, chunk_size=chunk_size, **sections)
    return folder


def started_run(runs, folder: Path, target):
    """``lrt run``, returned once it is under way (its embedded server answers), so faults hit a running run."""
    run = runs.lrt_run(folder, target=target)
    wait_until(lambda: target.under_way(folder), run)
    return run


def token_docs(folder: Path, target) -> list[dict]:
    """The tokens of the run's database, on the running server (an embedded one is not started)."""
    return target.tokens(folder, start=False) or []


def assert_converged(folder: Path, target, chunks: int) -> None:
    out = folder / "results" / OBSID
    status = json.loads((out / "status.json").read_text())
    assert status["counts"] == {"todo": 0, "locked": 0, "done": chunks, "error": 0, "total": chunks}
    ids = json.loads((out / "tokens.json").read_text())["ids"]
    assert len(ids) == len(set(ids)) == chunks
    runs = Counter((folder / "ledger.txt").read_text().split())
    assert sorted(runs) == sorted(ids), "a token was never processed"
    assert max(runs.values()) == 1, f"processed twice: {[i for i, n in runs.items() if n > 1]}"
    with tarfile.open(out / "tokens_demo.tar.gz") as tar:
        manifest = json.load(tar.extractfile("demo/manifest.json"))
    assert sorted(manifest["tokens"]) == sorted(ids)
    assert target.stopped(folder), "the server was left running"


def test_killed_after_chunking(tmp_path, workflow_couchdb, runs):
    target = workflow_couchdb
    folder = ledger_project(tmp_path, target)
    run = runs.lrt_run(folder, target=target)
    wait_until(lambda: (folder / "results" / OBSID / "chunks" / "index.json").exists(), run)
    runs.kill(run)
    runs.finish(runs.lrt_run(folder, target=target))
    assert_converged(folder, target, 3)


def test_killed_between_two_bulk_batches_of_token_creation(tmp_path, workflow_couchdb, runs):
    target = workflow_couchdb
    folder = ledger_project(tmp_path, target, subbands=40, chunk_size=1, couchdb={"batch_size": 1})
    run = started_run(runs, folder, target)
    wait_until(lambda: 0 < len(token_docs(folder, target)) < 40, run, step=0.01)
    runs.kill(run)
    assert 0 < len(token_docs(folder, target)) < 40
    runs.finish(runs.lrt_run(folder, target=target))
    assert_converged(folder, target, 40)


def test_killed_while_pilots_run_and_locks_go_stale(tmp_path, workflow_couchdb, runs):
    target = workflow_couchdb
    folder = ledger_project(tmp_path, target, job_seconds=2)
    run = started_run(runs, folder, target)
    wait_until(lambda: any(t.get("status") == "running" for t in token_docs(folder, target)), run)
    runs.kill(run)
    locked = [t for t in token_docs(folder, target) if t["lock"] and not t["done"]]
    assert locked, "the kill should leave locked tokens behind"
    runs.finish(runs.lrt_run(folder, target=target))
    assert_converged(folder, target, 3)
    for token in target.tokens(folder):  # an embedded server is started for the look
        if token["_id"] in {t["_id"] for t in locked}:
            assert token["scrub_count"] == 1, "a stale lock is reset once, counted in scrub_count"


def test_jobs_longer_than_the_lease_run_once_while_an_idle_pilot_looks_for_stale_tokens(tmp_path, workflow_couchdb,
                                                                                         runs):
    # Two jobs of four leases each and three pilots: the idle one resets stale tokens every half second.
    target = workflow_couchdb
    folder = ledger_project(tmp_path, target, subbands=20, job_seconds=8, pilots={"count": 3, "lease_seconds": 2})
    runs.finish(runs.lrt_run(folder, target=target), timeout=120)
    assert_converged(folder, target, 2)
    assert [t["scrub_count"] for t in target.tokens(folder)] == [0, 0]


def test_killed_during_wait_with_external_pilots(tmp_path, workflow_couchdb, runs):
    target = workflow_couchdb
    folder = ledger_project(tmp_path, target, pilots={"launcher": "none"})
    run = runs.lrt_run(folder, target=target)
    polls = folder / "results" / OBSID / "logs" / "polls.jsonl"
    # killed once the wait has looked at the tokens at least once
    wait_until(lambda: polls.exists() and polls.read_text().endswith("\n"), run)
    runs.kill(run)
    # An external pilot, as a user starts it in the project folder: ``lrt worker`` reads ./config.yaml,
    # and starts (and afterwards stops) the embedded server itself when the killed run's is gone.
    worker = runs.lrt(folder, "worker", target=target)
    assert worker.returncode == 0, worker.stdout[-3000:]
    assert "processed 3" in worker.stdout, worker.stdout[-3000:]
    runs.finish(runs.lrt_run(folder, target=target))
    assert_converged(folder, target, 3)


def test_a_second_run_at_the_same_time_is_refused(tmp_path, workflow_couchdb, runs):
    target = workflow_couchdb
    folder = ledger_project(tmp_path, target, job_seconds=1)
    first = started_run(runs, folder, target)
    second = runs.finish(runs.lrt_run(folder, target=target), check=False, timeout=60)
    assert second.returncode == 1
    assert "another Snakemake (pid" in second.stdout and "is running this workflow" in second.stdout
    runs.finish(first)
    assert_converged(folder, target, 3)


# --- a killed pilot ---------------------------------------------------------------


def test_sigkilled_pilot_leaves_a_lock_that_wait_resets_for_another_pilot(tmp_path, couchdb_server, database,
                                                                          monkeypatch, runs):
    from lrt_workflow.token import Token, TokenStore

    for name, value in couchdb_server.environment().items():  # for the wait step run here
        monkeypatch.setenv(name, value)
    store = TokenStore(database, "demo")
    store.ensure_design()
    store.create([Token("demo", "demo_L1_SB000", OBSID="L1", STARTSB="000")])
    ledger = tmp_path / "ledger.txt"
    # The pilots run in a folder of their own (no config.yaml), with the server's credentials.
    base = [sys.executable, "-m", "lrt_workflow", "worker", "--url", couchdb_server.url,
            "--database", database.database_name, "--type", "demo", "--heartbeat-seconds", "1",
            "--workdir", str(tmp_path / "work")]
    environment = couchdb_server.environment()
    doomed = runs.start(tmp_path, *base, "--command", f"echo $$ > {tmp_path}/job.pid; sleep 60; echo x >> {ledger}",
                        env=environment)
    job = int(wait_until(lambda: store.get("demo_L1_SB000")["status"] == "running" and (tmp_path / "job.pid").exists()
                         and (tmp_path / "job.pid").read_text().strip(), doomed))
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    # What is left of its job, its sleep, outlives it (test_the_children_of_a_dead_workers_job_die_with_it in
    # test_leases.py, xfail): end it, so that this test leaves nothing running.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(job, signal.SIGKILL)
    assert store.get("demo_L1_SB000")["lock"] > 0, "a SIGKILLed worker cannot release its token"

    settings = step_settings(validate_config({
        "srm_file": "x", "token": {"type": "demo", "template": "x"},
        "couchdb": {"url": couchdb_server.url, "database": database.database_name},
        "pilots": {"lease_seconds": 3}, "wait": {"poll_seconds": 0.3, "timeout_seconds": 60},
    }), "demo")
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"ids": ["demo_L1_SB000"]}))
    # another pilot, which keeps trying until the token is free again
    rescuer = runs.start(tmp_path, "bash", "-c", f"for i in $(seq 40); do {' '.join(base)} --command "
                         f"'echo done >> {ledger}' | grep -q 'processed 1' && exit 0; sleep 0.5; done; exit 1",
                         env=environment)
    status = pilots.wait_step(settings, tokens, tmp_path / "status.json", tmp_path / "polls.jsonl",
                              tmp_path / "results.json")
    assert runs.finish(rescuer, timeout=60).returncode == 0
    assert status["counts"]["done"] == 1
    doc = store.get("demo_L1_SB000")
    assert doc["scrub_count"] == 1 and doc["status"] == "done"
    assert ledger.read_text() == "done\n"
    polls = [json.loads(line) for line in (tmp_path / "polls.jsonl").read_text().splitlines()]
    assert sum(p["reset_stale"] for p in polls) == 1


# --- a database outage ------------------------------------------------------------


class StoppableServer:
    """A server of the session's kind that this test alone uses, so it may stop it and start it again
    with its data: the embedded one, or an Apache CouchDB of its own (with its admin's credentials in
    the environment). The user's own server (a URL) is never stopped."""

    def __init__(self, folder: Path, monkeypatch):
        if kind() == "embedded":
            self.embedded = EmbeddedServer(folder / "couchdb")
            self.couchdb = {"url": "embedded", "database": "lrt", "embedded_data_dir": str(folder / "couchdb")}
        elif kind() == "apache":
            self.embedded = None
            try:
                tarball = find_tarball()
            except Unavailable as missing:
                unavailable(str(missing))
            self.apache = ApacheCouchDB(tarball, Account("admin", "Adm-" + secrets.token_hex(10)))
            self.couchdb = {"url": self.apache.url, "database": "lrt"}
            for name, value in self.apache.admin.environment().items():
                monkeypatch.setenv(name, value)
        else:
            pytest.skip("an outage would have to stop your own server")

    def start(self) -> None:
        self.embedded.start() if self.embedded else self.apache.start()

    def stop(self, *, keep_data: bool = True) -> None:
        self.embedded.stop() if self.embedded else self.apache.stop(keep_folder=keep_data)


@pytest.fixture
def stoppable_server(tmp_path, monkeypatch):
    server = StoppableServer(tmp_path, monkeypatch)
    try:
        server.start()
        yield server
    finally:
        server.stop(keep_data=False)


def outage_settings(couchdb: dict, **wait) -> dict:
    return step_settings(validate_config({
        "srm_file": "x", "token": {"type": "demo", "template": "x"}, "couchdb": couchdb,
        "pilots": {"lease_seconds": 60}, "wait": {"poll_seconds": 0.3, "timeout_seconds": 60, **wait},
    }), "demo")


def test_wait_survives_a_database_outage(tmp_path, stoppable_server, caplog):
    from lrt_workflow.token import Token

    server = stoppable_server
    settings = outage_settings(server.couchdb)
    store = store_for(settings)
    store.ensure_design()
    store.create([Token("demo", "demo_L1_SB000"), Token("demo", "demo_L1_SB001")])
    store.set_fields(["demo_L1_SB000"], lock=int(time.time()), done=int(time.time()), output=0)
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"ids": ["demo_L1_SB000", "demo_L1_SB001"]}))
    failed_polls = lambda: caplog.text.count("trying again in")  # noqa: E731

    # The outage, staged between the wait's polls (its pauses): down after its first poll, which
    # saw one token still to do; up again once two polls have failed, and the last token done.
    pauses = []

    def pause(seconds):
        pauses.append(failed_polls())
        if len(pauses) == 1:
            server.stop()
        elif failed_polls() == 2:
            server.start()
            store_for(settings).set_fields(["demo_L1_SB001"], lock=1, done=int(time.time()), output=0)
        time.sleep(seconds)

    with caplog.at_level("WARNING", logger="lrt_workflow"):
        status = pilots.wait_step(settings, tokens, tmp_path / "status.json", tmp_path / "polls.jsonl",
                                  tmp_path / "results.json", sleep=pause)
    assert pauses[:3] == [0, 1, 2], "the wait did not keep going through two failed polls"
    assert status["counts"]["done"] == 2


def test_wait_gives_up_at_the_deadline_naming_the_url_without_password(tmp_path):
    secret = "Outage-Secret-1"
    settings = step_settings(validate_config({
        "srm_file": "x", "token": {"type": "demo", "template": "x"},
        "couchdb": {"url": f"http://alice:{secret}@127.0.0.1:9/", "database": "lrt"},
        "wait": {"poll_seconds": 0.2, "timeout_seconds": 1},
    }), "demo")
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"ids": ["a"]}))
    with pytest.raises(WaitFailed) as error:
        pilots.wait_step(settings, tokens, tmp_path / "status.json", tmp_path / "polls.jsonl",
                         tmp_path / "results.json")
    assert "127.0.0.1:9" in str(error.value) and secret not in str(error.value)
    assert not (tmp_path / "status.json").exists() and not (tmp_path / "results.json").exists()
