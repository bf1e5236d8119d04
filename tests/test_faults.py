"""Faults injected into real runs: killed orchestrators and pilots, a database outage, concurrent runs.

After each fault the README's rerun command (``lrt run``) must converge to
the same state as an uninterrupted run: one token per chunk, all done, no
job run twice (every job appends its token id to a ledger), and an archive
holding every token.

The runs use their own embedded server, or the server of LRT_TEST_COUCHDB as
the usual PiCaS account (``workflow_couchdb`` in conftest.py).
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from lrt_workflow.config import validate_config
from lrt_workflow.couchdb.embedded import EmbeddedServer
from lrt_workflow.steps import pilots, store_for
from lrt_workflow.steps.pilots import WaitFailed
from servers import Account, ApacheCouchDB, Unavailable, find_tarball, kind, unavailable

ROOT = Path(__file__).resolve().parent.parent
SRM_50 = ROOT / "tests" / "data" / "srm" / "srm_50_sara.txt"
OBSID = "L229507"

pytestmark = pytest.mark.slow


def project(folder: Path, target, subbands=30, chunk_size=10, job_seconds=0.0, **sections) -> Path:
    (folder / "example").mkdir(parents=True, exist_ok=True)
    (folder / "example" / "srm.txt").write_text("\n".join(SRM_50.read_text().splitlines()[:subbands]) + "\n")
    ledger = folder / "ledger.txt"
    command = f'sleep {job_seconds}; echo "$LRT_TOKEN_ID" >> {ledger}'
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config.update(srm_file="example/srm.txt", chunk_size=chunk_size)
    config["token"].update(template=str(ROOT / "example" / "token.json"), command=command, attachments=[])
    config["wait"].update(poll_seconds=0.5)
    config["pilots"].update(count=2, lease_seconds=4)
    config["couchdb"].update(target.config)
    for section, values in sections.items():
        config[section].update(values)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def lrt_run(folder: Path, target) -> subprocess.Popen:
    """The README's rerun command, in its own session so a test can kill the whole run at once."""
    args = ["-s", str(ROOT / "Snakefile"), "--profile", str(ROOT / "profiles" / "local")]
    return subprocess.Popen([sys.executable, "-m", "lrt_workflow", "run", *args], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, **target.environment})


def started_run(folder: Path, target) -> subprocess.Popen:
    """``lrt run``, returned once it is under way (its embedded server answers), so faults hit a running run."""
    run = lrt_run(folder, target)
    wait_until(lambda: target.under_way(folder), run)
    return run


def finish(process: subprocess.Popen, timeout=300) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-5000:]
    return output


def wait_until(predicate, process=None, timeout=120, step=0.05):
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError("the run ended before the fault could be injected:\n" + process.stdout.read()[-3000:])
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(step)


def token_docs(folder: Path, target) -> list[dict]:
    """The tokens of the run's database, on the running server (an embedded one is not started)."""
    return target.tokens(folder, start=False) or []


def kill_run(process: subprocess.Popen) -> None:
    """SIGKILL the orchestrator and every job it started, as a crashed login node would."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


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


def test_killed_after_chunking(tmp_path, workflow_couchdb):
    target = workflow_couchdb
    folder = project(tmp_path, target)
    run = lrt_run(folder, target)
    wait_until(lambda: (folder / "results" / OBSID / "chunks" / "index.json").exists(), run)
    kill_run(run)
    finish(lrt_run(folder, target))
    assert_converged(folder, target, 3)


def test_killed_between_two_bulk_batches_of_token_creation(tmp_path, workflow_couchdb):
    target = workflow_couchdb
    folder = project(tmp_path, target, subbands=40, chunk_size=1, couchdb={"batch_size": 1})
    run = started_run(folder, target)
    wait_until(lambda: 0 < len(token_docs(folder, target)) < 40, run, step=0.01)
    kill_run(run)
    assert 0 < len(token_docs(folder, target)) < 40
    finish(lrt_run(folder, target))
    assert_converged(folder, target, 40)


def test_killed_while_pilots_run_and_locks_go_stale(tmp_path, workflow_couchdb):
    target = workflow_couchdb
    folder = project(tmp_path, target, job_seconds=2)
    run = started_run(folder, target)
    wait_until(lambda: any(t.get("status") == "running" for t in token_docs(folder, target)), run)
    kill_run(run)
    locked = [t for t in token_docs(folder, target) if t["lock"] and not t["done"]]
    assert locked, "the kill should leave locked tokens behind"
    finish(lrt_run(folder, target))
    assert_converged(folder, target, 3)
    for token in target.tokens(folder):  # an embedded server is started for the look
        if token["_id"] in {t["_id"] for t in locked}:
            assert token["scrub_count"] == 1, "a stale lock is reset once, counted in scrub_count"


def test_jobs_longer_than_the_lease_run_once_while_an_idle_pilot_looks_for_stale_tokens(tmp_path, workflow_couchdb):
    # Two jobs of four leases each and three pilots: the idle one resets stale tokens every half second.
    target = workflow_couchdb
    folder = project(tmp_path, target, subbands=20, job_seconds=8, pilots={"count": 3, "lease_seconds": 2})
    finish(lrt_run(folder, target), timeout=120)
    assert_converged(folder, target, 2)
    assert [t["scrub_count"] for t in target.tokens(folder)] == [0, 0]


def test_killed_during_wait_with_external_pilots(tmp_path, workflow_couchdb):
    target = workflow_couchdb
    folder = project(tmp_path, target, pilots={"launcher": "none"})
    run = lrt_run(folder, target)
    wait_until(lambda: (folder / "results" / OBSID / "logs" / "wait.log").exists(), run)
    time.sleep(1)
    kill_run(run)
    worker = subprocess.run([sys.executable, "-m", "lrt_workflow", "worker", "--url", target.url(folder),
                             "--database", target.database, "--type", "demo", "--config", str(folder / "config.yaml")],
                            cwd=folder, capture_output=True, text=True, timeout=120,
                            env={**os.environ, **target.environment})
    assert worker.returncode == 0, worker.stderr
    finish(lrt_run(folder, target))
    assert_converged(folder, target, 3)


def test_a_second_run_at_the_same_time_is_refused(tmp_path, workflow_couchdb):
    target = workflow_couchdb
    folder = project(tmp_path, target, job_seconds=1)
    first = started_run(folder, target)
    second = lrt_run(folder, target)
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 1
    assert "another Snakemake (pid" in output and "is running this workflow" in output
    finish(first)
    assert_converged(folder, target, 3)


# --- a killed pilot ---------------------------------------------------------------


def test_sigkilled_pilot_leaves_a_lock_that_wait_resets_for_another_pilot(tmp_path, couchdb_server, database,
                                                                          monkeypatch):
    from lrt_workflow.token import Token, TokenStore

    for name, value in couchdb_server.environment().items():  # for the pilots, and the wait step run here
        monkeypatch.setenv(name, value)
    store = TokenStore(database, "demo")
    store.ensure_design()
    store.create([Token("demo", "demo_L1_SB000", OBSID="L1", STARTSB="000")])
    ledger = tmp_path / "ledger.txt"
    base = [sys.executable, "-m", "lrt_workflow", "worker", "--url", couchdb_server.url,
            "--database", database.database_name, "--type", "demo", "--heartbeat-seconds", "1",
            "--workdir", str(tmp_path / "work")]
    doomed = subprocess.Popen([*base, "--command", f"sleep 60; echo x >> {ledger}"])
    wait_until(lambda: store.get("demo_L1_SB000")["status"] == "running")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    assert store.get("demo_L1_SB000")["lock"] > 0, "a SIGKILLed worker cannot release its token"

    config = validate_config({
        "srm_file": "x", "token": {"type": "demo", "template": "x"},
        "couchdb": {"url": couchdb_server.url, "database": database.database_name},
        "pilots": {"lease_seconds": 3}, "wait": {"poll_seconds": 0.3, "timeout_seconds": 60},
    })
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"ids": ["demo_L1_SB000"]}))
    # another pilot, which keeps trying until the token is free again
    rescuer = subprocess.Popen(["bash", "-c", f"for i in $(seq 40); do {' '.join(base)} --command 'echo done >> {ledger}'"
                                f" | grep -q 'processed 1' && exit 0; sleep 0.5; done; exit 1"])
    status = pilots.wait_step(config, tokens, tmp_path / "status.json", tmp_path / "polls.jsonl")
    assert rescuer.wait(timeout=60) == 0
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


def outage_config(couchdb: dict, **wait) -> dict:
    return validate_config({
        "srm_file": "x", "token": {"type": "demo", "template": "x"}, "couchdb": couchdb,
        "pilots": {"lease_seconds": 60}, "wait": {"poll_seconds": 0.3, "timeout_seconds": 60, **wait},
    })


def test_wait_survives_a_database_outage(tmp_path, stoppable_server):
    from lrt_workflow.token import Token

    server = stoppable_server
    config = outage_config(server.couchdb)
    store = store_for(config)
    store.ensure_design()
    store.create([Token("demo", "demo_L1_SB000"), Token("demo", "demo_L1_SB001")])
    store.set_fields(["demo_L1_SB000"], lock=int(time.time()), done=int(time.time()), output=0)
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"ids": ["demo_L1_SB000", "demo_L1_SB001"]}))

    def outage_then_work():
        time.sleep(1)
        server.stop()
        time.sleep(3)
        server.start()
        store_for(config).set_fields(["demo_L1_SB001"], lock=1, done=int(time.time()), output=0)

    thread = threading.Thread(target=outage_then_work)
    thread.start()
    status = pilots.wait_step(config, tokens, tmp_path / "status.json", tmp_path / "polls.jsonl")
    thread.join()
    assert status["counts"]["done"] == 2


def test_wait_gives_up_at_the_deadline_naming_the_url_without_password(tmp_path):
    secret = "Outage-Secret-1"
    config = validate_config({
        "srm_file": "x", "token": {"type": "demo", "template": "x"},
        "couchdb": {"url": f"http://alice:{secret}@127.0.0.1:9/", "database": "lrt"},
        "wait": {"poll_seconds": 0.2, "timeout_seconds": 1},
    })
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"ids": ["a"]}))
    with pytest.raises(WaitFailed) as error:
        pilots.wait_step(config, tokens, tmp_path / "status.json", tmp_path / "polls.jsonl")
    assert "127.0.0.1:9" in str(error.value) and secret not in str(error.value)
