"""``snakemake --executor picas`` end to end: real Snakemake, real ``lrt worker`` pilots, a real server.

The server is the session's (embedded unless ``LRT_TEST_COUCHDB`` says otherwise), with a database
of the test's own; the 50-job test uses the workflow folder's own embedded server, as a user would,
when the session's is embedded. Every pilot and Snakemake run a test starts is stopped when it
ends, and `nothing_left_running` checks that no process of the test's folder is left.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest
import requests
from snakemake.common.tests import TestWorkflowsLocalStorageBase

from lrt_workflow.couchdb.embedded import EmbeddedServer
from pilots import Couch, Pilots, Runs, snakefile
from project import alive, wait_until
from snakemake_executor_plugin_picas import ExecutorSettings

pytestmark = pytest.mark.slow


@pytest.fixture
def couch(request, couchdb_server) -> Couch:
    """The test's database on the session's server; elsewhere than embedded, used as the usual PiCaS
    account (admin of the database only), whose credentials executor and pilots get from the environment."""
    if couchdb_server.kind == "embedded":
        return Couch(couchdb_server.url, request.getfixturevalue("database").database_name)
    target = request.getfixturevalue("workflow_couchdb")
    return Couch(target.server.url, target.database, target.environment)


def processes_in(folder: Path) -> list[str]:
    """Processes whose command line or working folder is in ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (str(folder) in command or cwd.startswith(str(folder))) and alive(int(entry.name)):
            found.append(f"{entry.name}: {command[:200]}")
    return found


@pytest.fixture(autouse=True)
def nothing_left_running(tmp_path):
    """Torn down last: by then no pilot, job, Snakemake or embedded server of the test may be running."""
    yield
    wait_until(lambda: not processes_in(tmp_path), timeout=30, what="every process of the test ended")


@pytest.fixture
def pilots(tmp_path, couch):
    started = Pilots(tmp_path, couch)
    yield started
    started.stop()


@pytest.fixture
def snakemake(tmp_path, couch):
    started = Runs(tmp_path, couch)
    yield started
    started.kill_all()


def history(doc: dict, event: str) -> list[dict]:
    return [entry for entry in doc.get("history", []) if entry["event"] == event]


def count_requests_per_status_round(monkeypatch) -> list[tuple[int, int]]:
    """(jobs watched, HTTP requests sent) of each of the in-process executor's status rounds. Snakemake
    runs the rounds in a thread of their own, so only that thread's requests during a round count."""
    import threading

    import requests
    from snakemake_executor_plugin_picas.executor import Executor

    rounds, counting = [], threading.local()
    send, check = requests.Session.send, Executor.check_active_jobs

    def counted_send(session, *args, **kwargs):
        if getattr(counting, "requests", None) is not None:
            counting.requests += 1
        return send(session, *args, **kwargs)

    async def counted_check(executor, active_jobs):
        counting.requests = 0
        try:
            async for job_info in check(executor, active_jobs):
                yield job_info
        finally:
            rounds.append((len(active_jobs), counting.requests))
            counting.requests = None

    monkeypatch.setattr(requests.Session, "send", counted_send)
    monkeypatch.setattr(Executor, "check_active_jobs", counted_check)
    return rounds


# --- Snakemake's own test bases ------------------------------------------------------------------------


class TestSnakemakesExecutorTestBases(TestWorkflowsLocalStorageBase):
    """Snakemake's test workflows for executor plugins (simple, groups), run in-process, served by 3 pilots."""

    __test__ = True
    latency_wait = 10

    @pytest.fixture(autouse=True)
    def served(self, couch, tmp_path, monkeypatch):
        for name in [name for name in os.environ if name.startswith("PICAS")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("HOME", str(tmp_path))
        for name, value in couch.env.items():
            monkeypatch.setenv(name, value)
        self.couch = couch
        rounds = count_requests_per_status_round(monkeypatch)
        pilots = Pilots(tmp_path, couch)
        pilots.start(3)
        try:
            yield
        finally:
            pilots.stop()
        tokens = couch.tokens(tmp_path).values()
        assert tokens and {doc["status"] for doc in tokens} == {"done"}, [doc["_id"] for doc in tokens]
        # One request per status round, however many jobs it watched (the runs have rounds of several).
        assert {requests for jobs, requests in rounds if jobs} == {1}, [r for r in rounds if r[1] != 1]
        assert max(jobs for jobs, _ in rounds) > 1, rounds

    def get_executor(self) -> str:
        return "picas"

    def get_executor_settings(self) -> ExecutorSettings:
        return ExecutorSettings(url=self.couch.url, database=self.couch.database, status_seconds=0.3)


# --- a workflow of 50 jobs -------------------------------------------------------------------------------

FAN = """
localrules: all

rule all:
    input: "total.txt"

rule start:
    output: "start.txt"
    shell: "echo 0 > {output}"

rule part:
    input: "start.txt"
    output: "parts/{i}.txt"
    resources: mem_mb=50, runtime=2
    shell: "echo {wildcards.i} > {output}"

rule total:
    input: expand("parts/{i}.txt", i=range(48))
    output: "total.txt"
    shell: "cat {input} | awk '{{s += $1}} END {{print s}}' > {output}"
"""


def test_fifty_jobs_fan_out_and_in_on_four_pilots_and_a_rerun_does_nothing(tmp_path, couch, couchdb_server):
    if couchdb_server.kind == "embedded":
        couch = Couch(None, "lrt")  # the folder's own embedded server, started by the executor
    folder = snakefile(tmp_path, FAN)
    runs, pilots = Runs(folder, couch), Pilots(folder, couch)
    try:
        first = runs.start()
        wait_until(lambda: couch.database_exists(folder) or first.poll() is not None, what="the database")
        pilots.start(4)
        output = runs.finish(first, timeout=600)
        assert first.returncode == 0, output[-4000:]
        assert (folder / "total.txt").read_text().strip() == str(sum(range(48)))
        tokens = couch.tokens(folder)
        assert len(tokens) == 50 and {doc["status"] for doc in tokens.values()} == {"done"}
        assert all(len(history(doc, "locked")) == 1 for doc in tokens.values())  # each job ran once
        assert len({history(doc, "locked")[0]["worker"] for doc in tokens.values()}) > 1
        part = next(doc for doc in tokens.values() if doc["snakemake"]["rule"] == "part")
        assert part["resources"]["mem_mb"] == 50 and part["resources"]["runtime"] == 2
        assert part["resources"]["threads"] == 1 and part["snakemake"]["attempt"] == 1
        if couch.env:
            assert couch.env["PICAS_PASSWORD"] not in json.dumps(tokens)

        again = runs.start()
        output = runs.finish(again)
        assert again.returncode == 0 and "Nothing to be done" in output, output[-4000:]
        assert {i: doc["_rev"] for i, doc in couch.tokens(folder).items()} == \
            {i: doc["_rev"] for i, doc in tokens.items()}
    finally:
        runs.kill_all()
        pilots.stop()
    if couch.url is None:  # the executor and the pilots shared the folder's server; the last one stopped it
        assert EmbeddedServer(folder / ".lrt" / "couchdb").running() is None


# --- failures ---------------------------------------------------------------------------------------------

FAILING = """
localrules: all

rule all:
    input: "ok.txt", "bad.txt"

rule ok:
    output: "ok.txt"
    shell: "touch {output}"

rule bad:
    output: "bad.txt"
    shell: "echo the input was rotten: code-$((7000 + 741)) >&2; exit 3"
"""


def test_a_failing_job_is_reported_with_its_stderr_tail_and_retried(tmp_path, couch, pilots, snakemake):
    snakefile(tmp_path, FAILING)
    pilots.start(2)
    code, output = snakemake.run("--retries", "1")
    assert code != 0
    tokens = couch.tokens(tmp_path)
    bad = sorted(i for i, doc in tokens.items() if doc["snakemake"]["rule"] == "bad")
    assert [i[-3:] for i in bad] == ["_a1", "_a2"]  # a token per attempt
    assert all(tokens[i]["status"] == "error" for i in bad)
    ok = [doc for doc in tokens.values() if doc["snakemake"]["rule"] == "ok"]
    assert [doc["status"] for doc in ok] == ["done"]
    report = output[output.index("Error in rule bad"):]
    # Worked out by the job, so only its stderr has it: the report also shows the rule's command.
    assert "the input was rotten: code-7741" in report and bad[-1] in report
    assert "code-7741" in (tmp_path / ".snakemake" / "picas" / f"{bad[-1]}.stderr.log").read_text()


SLOW = """
rule slow:
    output: "slow.txt"
    shell: "if [ -e first.pid ]; then echo second > {output}; "
           "else echo $$ > first.pid; sleep 600 & echo $! > sleep.pid; wait; fi"
"""


def test_a_killed_pilot_is_recovered_after_the_lease(tmp_path, couch, pilots, snakemake):
    snakefile(tmp_path, SLOW)
    run = snakemake.start("--picas-lease-seconds", "4")
    [first] = pilots.start(1, lease=4)
    wait_until(lambda: (tmp_path / "sleep.pid").exists(), what="the first attempt running")
    job, sleeper = int((tmp_path / "first.pid").read_text()), int((tmp_path / "sleep.pid").read_text())
    Pilots.kill(first)
    # The job's watchdog ends the whole job with its pilot: it never runs on beside the next attempt.
    wait_until(lambda: not alive(job) and not alive(sleeper), timeout=30, what="the orphaned job ended")
    pilots.start(1, lease=4)
    output = snakemake.finish(run)
    assert run.returncode == 0, output[-4000:]
    assert (tmp_path / "slow.txt").read_text().strip() == "second"
    [doc] = couch.tokens(tmp_path).values()
    locks = history(doc, "locked")
    assert len(locks) == 2 and locks[0]["worker"] != locks[1]["worker"]
    assert history(doc, "expired") and doc["scrub_count"] == 1 and doc["status"] == "done"


# --- cancelling and rerunning ---------------------------------------------------------------------------

WAITING = """
localrules: all

rule all:
    input: expand("w/{i}.txt", i=range(3))

rule w:
    output: "w/{i}.txt"
    shell: "echo $$ > running-{wildcards.i}.pid; while [ ! -e go ]; do sleep 0.1; done; touch {output}"
"""


def test_ctrl_c_cancels_waiting_tokens_and_stops_running_jobs_at_their_next_heartbeat(tmp_path, couch, pilots,
                                                                                      snakemake):
    snakefile(tmp_path, WAITING)
    run = snakemake.start()
    [pilot] = pilots.start(1, lease=4)  # a heartbeat every second
    job = wait_until(lambda: next(tmp_path.glob("running-*.pid"), None), what="a job running")
    wait_until(lambda: len(couch.tokens(tmp_path)) == 3, what="three tokens")
    run.send_signal(signal.SIGINT)
    output = snakemake.finish(run)
    assert "cancelled 3 token(s)" in output, output[-4000:]
    wait_until(lambda: not alive(int(job.read_text())), timeout=30, what="the running job stopped")
    tokens = couch.tokens(tmp_path).values()
    assert all(history(doc, "cancelled") and doc["status"] == "error" for doc in tokens)
    assert sorted(len(history(doc, "locked")) for doc in tokens) == [0, 0, 1]  # two never started
    assert pilot.poll() is None  # the pilot goes on serving
    assert "the token is no longer this worker's, it is error: cancelled: the Snakemake run" in pilots.log(0)

    (tmp_path / "go").touch()
    code, output = snakemake.run()
    assert code == 0, output[-4000:]
    tokens = couch.tokens(tmp_path).values()
    assert len(tokens) == 3 and all(doc["status"] == "done" and history(doc, "resubmitted") for doc in tokens)


LONG = """
rule long:
    output: "long.txt"
    shell: "echo run >> runs.txt; while [ ! -e go ]; do sleep 0.1; done; touch {output}"
"""


def test_a_rerun_after_snakemake_was_killed_watches_the_running_token_instead_of_submitting_again(
        tmp_path, couch, pilots, snakemake):
    snakefile(tmp_path, LONG)
    run = snakemake.start()
    pilots.start(1)
    wait_until(lambda: (tmp_path / "runs.txt").exists(), what="the job running")
    os.killpg(run.pid, signal.SIGKILL)  # a lost login node
    run.wait()
    unlock = snakemake.run("--unlock")
    assert unlock[0] == 0, unlock[1][-3000:]
    again = snakemake.start()
    wait_until(lambda: "is token" in again.log_path.read_text() or again.poll() is not None,
               what="the rerun submitting the job")
    (tmp_path / "go").touch()
    output = snakemake.finish(again)
    assert again.returncode == 0 and "found locked (an earlier run's), watched again" in output, output[-4000:]
    assert (tmp_path / "runs.txt").read_text() == "run\n"  # the job ran once
    [doc] = couch.tokens(tmp_path).values()
    assert len(history(doc, "locked")) == 1 and history(doc, "adopted") and doc["status"] == "done"


# --- secrets ----------------------------------------------------------------------------------------------

SECRET = "s3cr3t-value-4417"
NEEDS_SECRET = """
envvars: "LRT_TEST_SECRET"

rule env:
    output: "env.txt"
    shell: 'printf %s "$LRT_TEST_SECRET" | sha256sum > {output}; '
           "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\\\000' ' ' > command-lines.txt || true"
"""


@pytest.fixture
def couch_with_password(request, couch) -> Couch:
    """A database that takes a password: the server's own when it has one (Apache CouchDB), else a
    new one on the secured embedded server."""
    if couch.env:
        yield couch
        return
    url, user, password = request.getfixturevalue("secured_server")
    name = f"exec_{os.getpid()}_{abs(hash(request.node.name)) % 10**8}"
    requests.put(f"{url}/{name}", auth=(user, password), timeout=30).raise_for_status()
    yield Couch(url, name, {"PICAS_USER": user, "PICAS_PASSWORD": password})
    requests.delete(f"{url}/{name}", auth=(user, password), timeout=30)


def test_secrets_and_the_password_never_stand_in_a_token_a_log_or_a_command_line(tmp_path, couch_with_password):
    couch = couch_with_password
    password = couch.env["PICAS_PASSWORD"]
    snakefile(tmp_path, NEEDS_SECRET)
    pilots, snakemake = Pilots(tmp_path, couch), Runs(tmp_path, couch)
    try:
        pilots.start(1, env={"LRT_TEST_SECRET": SECRET})
        # A command that would hold a secret is refused before any token is made.
        code, output = snakemake.run("--config", f"leak={SECRET}", f"pw={password}", env={"LRT_TEST_SECRET": SECRET})
        assert code != 0 and "holds the value of LRT_TEST_SECRET, PICAS_PASSWORD" in output, output[-3000:]
        assert couch.tokens(tmp_path) == {}

        code, output = snakemake.run(env={"LRT_TEST_SECRET": SECRET})
        assert code == 0, output[-4000:]
    finally:
        snakemake.kill_all()
        pilots.stop()
    # The job had it, from its pilot.
    assert (tmp_path / "env.txt").read_text().split()[0] == hashlib.sha256(SECRET.encode()).hexdigest()
    [doc] = couch.tokens(tmp_path, attachments=True).values()
    assert doc["environment"] == {"from_pilot": ["LRT_TEST_SECRET"]}
    assert SECRET not in json.dumps(doc) and password not in json.dumps(doc)
    # Every command line there was while the job ran (its pilot's, Snakemake's, the job's own), and the logs.
    lines = (tmp_path / "command-lines.txt").read_text()
    assert "lrt_workflow worker" in lines and "--executor picas" in lines and password not in lines
    # (The refused run's logs hold the password its command line was given: the user's doing.)
    logs = [tmp_path / "snakemake-1.log", *tmp_path.glob("pilot-*.log"), sorted(tmp_path.glob(".snakemake/log/*"))[-1]]
    assert not [log for log in logs if password in log.read_text(errors="replace")]


def test_a_password_in_the_url_option_is_refused(tmp_path, couch, snakemake):
    snakefile(tmp_path, LONG)
    code, output = snakemake.run("--picas-url", "http://someone:not-a-real-one@127.0.0.1:9/")
    assert code != 0 and "holds a password" in output, output[-3000:]


# --- the benchmark ----------------------------------------------------------------------------------------


def test_the_executor_benchmark_runs_and_prints_its_table(tmp_path, capsys):
    """``benchmarks/executor.py --quick``: correctness only, never time."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lrt_executor_bench",
                                                  Path(__file__).parent.parent / "benchmarks" / "executor.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    markdown = bench.main(["--quick", "--out", str(tmp_path / "bench.md")])
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[2] for row in rows] == ["local", "picas, 1 pilot", "picas, 4 pilots", "local",
                                                    "picas, 1 pilot"]
    assert "one job's own Snakemake" in markdown and (tmp_path / "bench.md").read_text() == markdown
