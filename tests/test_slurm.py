"""Pilots as SLURM jobs: the workflow through the shipped profile, profiles/slurm, on a real
single-node SLURM cluster that scripts/slurm-cluster starts on this machine (root, Debian packages
slurmctld slurmd slurm-client munge; mariadb-server slurmdbd for accounting) and the executor
plugin (``python -m pip install -e '.[slurm]'``). Nothing of SLURM is mocked: the pilots are real
jobs, submitted, cancelled and watched with the real commands.

Where a test needs the run's status command to fail or to forget its jobs, a wrapper named squeue
comes first on the run's PATH: it withholds the real squeue's answer, as an unreachable controller
or MinJobAge would. The jobs themselves stay real.

Skipped, with the reason, where the cluster cannot be started; under CI=true that is a failure.
The embedded CouchDB server works here only because the compute node is this machine.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lrt_workflow.token.modifiers import state
from project import CALIBRATOR, ROOT, TARGET, one_step, pipeline, wait_until

pytestmark = pytest.mark.slurm

CLUSTER_SCRIPT = ROOT / "scripts" / "slurm-cluster"
PROFILE = ROOT / "profiles" / "slurm"
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
#: A run that works ends well within this; one that hangs never does.
RUN_TIMEOUT = 600


def unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"SLURM tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def need_plugin():
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        unavailable("the SLURM executor plugin is not installed: .venv/bin/python -m pip install -e '.[slurm]'")


class Cluster:
    """The private cluster of this session, with or without accounting; `stop` stops what it started."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.accounting: bool | None = None

    def script(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(CLUSTER_SCRIPT), *args, "--state-dir", str(self.state_dir)],
                              capture_output=True, text=True, timeout=300)

    def use(self, accounting: bool = False) -> "Cluster":
        if self.accounting == accounting:
            return self
        self.stop()
        started = self.script("start", *(["--accounting"] if accounting else []))
        if started.returncode != 0:
            unavailable(f"scripts/slurm-cluster start{' --accounting' if accounting else ''} failed "
                        f"(exit {started.returncode}): {(started.stdout + started.stderr).strip()[-1500:]}")
        self.accounting = accounting
        return self

    def stop(self) -> None:
        if self.accounting is not None:
            self.accounting = None
            stopped = self.script("stop")
            assert stopped.returncode == 0, stopped.stdout + stopped.stderr

    @staticmethod
    def jobs() -> dict[str, str]:
        """Every job squeue still shows (the cluster is private to these tests): id -> state."""
        found = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i|%T"],
                               capture_output=True, text=True, timeout=60, check=True)
        return dict(line.split("|") for line in found.stdout.split())

    def cancel_all(self) -> None:
        """Leave no job running for the next test: it would hold the node's cores."""
        running = [job for job, state in self.jobs().items() if state in ("PENDING", "RUNNING", "COMPLETING")]
        if running:
            subprocess.run(["scancel", *running], capture_output=True, timeout=60)
            wait_until(lambda: not any(self.jobs().get(job) in ("PENDING", "RUNNING", "COMPLETING")
                                       for job in running), timeout=90, step=0.5)


@pytest.fixture(scope="session")
def slurm_session():
    need_plugin()
    if os.geteuid() != 0:
        unavailable("starting a SLURM cluster needs root")
    # Not under pytest's private tmp folders: MariaDB's daemon (user mysql) keeps its data in the state folder.
    cluster = Cluster(Path("/run") / f"lrt-slurm-pytest-{os.getpid()}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def slurm(slurm_session):
    """The session's cluster, started without accounting unless a test asks; no job outlives the test."""
    yield slurm_session.use(accounting=False)
    if slurm_session.accounting is not None:
        slurm_session.cancel_all()


@pytest.fixture
def slurm_accounting(slurm_session):
    yield slurm_session.use(accounting=True)
    slurm_session.cancel_all()


def run_with_profile(runs, folder: Path, target, *args: str, env: dict | None = None, check: bool = True,
                     timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    return runs.snakemake(folder, "--profile", str(PROFILE), *args, target=target, env=env, check=check,
                          timeout=timeout)


def start_with_profile(runs, folder: Path, target, env: dict | None = None) -> subprocess.Popen:
    return runs.start(folder, sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                      "--profile", str(PROFILE), target=target, env=env)


def submitted(output: str) -> dict[str, str]:
    """The SLURM jobs a run submitted: job id -> its SLURM log."""
    return dict(SUBMITTED.findall(output))


def tokens_now(target, folder: Path) -> list[dict]:
    """The tokens while a run goes on (its embedded server is not started for the look); [] until they exist."""
    if not target.under_way(folder):
        return []
    try:
        return target.tokens(folder, start=False) or []
    except Exception:  # the server is starting, or stopping: look again
        return []


def held(target, folder: Path, count: int) -> list[dict]:
    """``count`` tokens locked by pilots that recorded their SLURM job, once there are."""
    docs = [doc for doc in tokens_now(target, folder) if doc.get("status") == "running" and doc.get("slurm_job_id")]
    return docs if len(docs) >= count else []


def assert_every_token_names_its_pilot_job(docs: list[dict], jobs: dict[str, str]) -> None:
    assert docs
    for doc in docs:
        assert doc.get("slurm_job_id") in jobs, (doc["_id"], doc.get("slurm_job_id"), jobs)
        claims = [event for event in doc["history"] if event["event"] == "locked"]
        assert claims and all(event.get("slurm_job_id") in jobs for event in claims), doc["history"]


def squeue_wrapper(folder: Path, body: str) -> dict:
    """An environment whose squeue runs ``body`` (sh) first; ``$REAL`` is the real squeue."""
    real = shutil.which("squeue")
    bin_dir = folder / "wrapper-bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(f"#!/bin/sh\nREAL={real}\n{body}\n")
    (bin_dir / "squeue").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def blocking_job(folder: Path) -> str:
    """A job that runs until the test creates ``go``: a pilot caught in the middle of a long job."""
    return f"while [ ! -e {folder}/go ]; do sleep 0.2; done"


# --- the shipped profile, unmodified -------------------------------------------------------------------


def test_the_demo_runs_as_slurm_jobs_without_accounting(slurm, tmp_path, runs, workflow_couchdb):
    """The CI case: no slurmdbd, so sacct cannot answer; squeue does. Every token names its pilot's job."""
    assert subprocess.run(["sacct"], capture_output=True).returncode != 0, "this cluster must have no accounting"
    one_step(tmp_path, workflow_couchdb)
    run = run_with_profile(runs, tmp_path, workflow_couchdb)
    jobs = submitted(run.stdout)
    assert len(jobs) == 2, run.stdout[-3000:]
    assert set(jobs) <= set(Cluster.jobs()), "the pilots ran as jobs of this cluster"
    docs = workflow_couchdb.tokens(tmp_path)
    assert [state(doc) for doc in docs] == ["done"] * 3
    assert_every_token_names_its_pilot_job(docs, jobs)
    if workflow_couchdb.embedded:
        assert "cannot reach it" in run.stdout, "the embedded server on a cluster is warned about"
    again = run_with_profile(runs, tmp_path, workflow_couchdb, "-n")
    assert "Nothing to be done" in again.stdout, again.stdout[-2000:]


def test_the_pipeline_runs_as_slurm_jobs(slurm, tmp_path, runs, workflow_couchdb):
    pipeline(tmp_path, workflow_couchdb)
    run = run_with_profile(runs, tmp_path, workflow_couchdb)
    jobs = submitted(run.stdout)
    assert len(jobs) == 8, "two pilots for each of the four steps"
    docs = workflow_couchdb.tokens(tmp_path)
    counts = {step: sum(doc["type"] == step and state(doc) == "done" for doc in docs)
              for step in ("cal1", "cal2", "targ1", "targ2")}
    assert counts == {"cal1": 8, "cal2": 1, "targ1": 20, "targ2": 2}
    assert_every_token_names_its_pilot_job(docs, jobs)
    assert (tmp_path / "results" / CALIBRATOR / "cal2" / "results.json").exists()
    assert (tmp_path / "results" / TARGET / "targ2" / "results.json").exists()


def test_the_demo_runs_as_slurm_jobs_with_accounting(slurm_accounting, tmp_path, runs, workflow_couchdb):
    one_step(tmp_path, workflow_couchdb)
    run = run_with_profile(runs, tmp_path, workflow_couchdb)
    jobs = submitted(run.stdout)
    accounted = subprocess.run(["sacct", "--noheader", "--parsable2", "-X", "--format=JobIdRaw,State",
                                "--jobs", ",".join(jobs)], capture_output=True, text=True, check=True).stdout
    assert {line.split("|")[0] for line in accounted.split()} == set(jobs), "slurmdbd accounted the pilots"
    docs = workflow_couchdb.tokens(tmp_path)
    assert [state(doc) for doc in docs] == ["done"] * 3
    assert_every_token_names_its_pilot_job(docs, jobs)


# --- stopping a run, a pilot cancelled ----------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_run_cancels_its_jobs_and_the_rerun_resumes(slurm, tmp_path, runs, workflow_couchdb,
                                                                       signum):
    one_step(tmp_path, workflow_couchdb, command=blocking_job(tmp_path))
    process = start_with_profile(runs, tmp_path, workflow_couchdb)
    holding = wait_until(lambda: held(workflow_couchdb, tmp_path, 2), process, timeout=RUN_TIMEOUT, step=0.2)
    jobs = {doc["slurm_job_id"] for doc in holding}
    process.send_signal(signum)
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{signum.name} did not stop the run within 120 s (its pilots run until told)")
    assert process.returncode != 0
    states = Cluster.jobs()
    assert all(states[job] == "CANCELLED" for job in jobs), (states, output[-3000:])
    docs = workflow_couchdb.tokens(tmp_path)
    assert [state(doc) for doc in docs] == ["todo"] * 3, "the pilots gave their tokens back"
    assert sum(event["event"] == "released" for doc in docs for event in doc.get("history", [])) == 2
    (tmp_path / "go").touch()
    run_with_profile(runs, tmp_path, workflow_couchdb)
    assert [state(doc) for doc in workflow_couchdb.tokens(tmp_path)] == ["done"] * 3


@pytest.mark.parametrize("how", ["scancel", "SIGKILL"])
def test_a_stopped_pilot_is_reported_with_its_job_and_log_and_the_rerun_converges(slurm, tmp_path, runs,
                                                                                  workflow_couchdb, how):
    """scancel: SLURM sends the pilot SIGTERM (also for scancel --signal=KILL: a step is terminated
    with SIGTERM first), and the pilot gives its token back. A pilot killed outright inside its job
    (SIGKILL, as the OOM killer does) cannot: its token is reset after the lease by the other pilot,
    which stays while a token is locked. Either way the job fails, the run reports its SLURM job id and
    log, and the rerun completes."""
    one_step(tmp_path, workflow_couchdb, command=blocking_job(tmp_path), pilots={"count": 2, "lease_seconds": 6})
    process = start_with_profile(runs, tmp_path, workflow_couchdb)
    victim = wait_until(lambda: held(workflow_couchdb, tmp_path, 2), process, timeout=RUN_TIMEOUT, step=0.2)[0]
    job = victim["slurm_job_id"]
    if how == "scancel":
        subprocess.run(["scancel", job], check=True, timeout=60)
    else:
        os.kill(int(victim["worker_id"].split(":")[1]), signal.SIGKILL)  # host:pid:nonce
    wait_until(lambda: Cluster.jobs().get(job) not in ("RUNNING", "COMPLETING"), timeout=120, step=0.2)
    (tmp_path / "go").touch()
    output, _ = process.communicate(timeout=RUN_TIMEOUT)
    assert process.returncode != 0
    log = submitted(output)[job]
    assert f"SLURM-job '{job}' failed" in output and log in output, output[-4000:]
    assert Path(log).exists(), "the failed job's SLURM log is kept"

    history = [event for doc in workflow_couchdb.tokens(tmp_path) if doc["_id"] == victim["_id"]
               for event in doc["history"]]
    events = [event["event"] for event in history]
    assert ("released" in events) if how == "scancel" else ("expired" in events), history
    claims = [event["slurm_job_id"] for event in history if event["event"] == "locked"]
    assert claims[0] == job and len(claims) == 2 and claims[1] != job, "run again by the other pilot"

    run_with_profile(runs, tmp_path, workflow_couchdb)
    assert [state(doc) for doc in workflow_couchdb.tokens(tmp_path)] == ["done"] * 3


# --- the guard: a job whose state cannot be learned -----------------------------------------------------


def test_a_status_outage_is_ridden_out(slurm, tmp_path, runs, workflow_couchdb):
    """squeue fails (an unreachable controller) while the pilots do all the work; once it answers again
    the run finishes. The plugin alone forgets the jobs of a failed check, and waits for them forever."""
    one_step(tmp_path, workflow_couchdb)
    (tmp_path / "outage").touch()
    env = squeue_wrapper(tmp_path, f'if [ -e {tmp_path}/outage ]; then\n'
                                   '  echo "squeue: error: slurm_load_jobs error: Unable to contact slurm controller '
                                   '(connect failure)" >&2; exit 1\nfi\nexec "$REAL" "$@"')
    process = start_with_profile(runs, tmp_path, workflow_couchdb, env=env)
    wait_until(lambda: (docs := tokens_now(workflow_couchdb, tmp_path)) and all(state(d) == "done" for d in docs),
               process, timeout=RUN_TIMEOUT, step=0.2)
    (tmp_path / "outage").unlink()
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the run did not finish after squeue answered again: it forgot its jobs")
    assert process.returncode == 0, output[-4000:]


def test_a_job_squeue_no_longer_lists_fails_the_run_naming_it(slurm, tmp_path, runs, workflow_couchdb):
    """squeue answers, but without the run's jobs, as it does MinJobAge seconds after they ended. The
    plugin alone asks about them forever; the run must fail, naming each job and why."""
    one_step(tmp_path, workflow_couchdb)
    env = {**squeue_wrapper(tmp_path, '"$REAL" "$@" > /dev/null'), "LRT_SLURM_UNKNOWN_SECONDS": "10"}
    process = start_with_profile(runs, tmp_path, workflow_couchdb, env=env)
    try:
        output, _ = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("the run hung on jobs whose state it could not learn")
    assert process.returncode != 0
    jobs = submitted(output)
    assert len(jobs) == 2
    for job, log in jobs.items():
        assert f"SLURM job {job}: its state could not be learned (`squeue` no longer lists it" in output, output[-4000:]
        assert log in output
    assert all(state not in ("PENDING", "RUNNING") for job, state in Cluster.jobs().items() if job in jobs)


def test_a_dry_run_with_the_slurm_profile_warns_about_the_embedded_server_and_shows_what_pilots_ask(tmp_path,
                                                                                                    runs):
    need_plugin()
    pipeline(tmp_path, pilots={"resources": {"runtime": 600}}, steps={"cal2": {"pilots": {"resources": {"mem_mb": 8000}}}})
    run = run_with_profile(runs, tmp_path, None, "-n")
    assert "couchdb.url is 'embedded'" in run.stdout and "cannot reach it" in run.stdout
    asked = dict(re.findall(r"rule (pilot_\w+):(?:\n.*?)*?\n\s+resources: (.*)", run.stdout))
    assert set(asked) == {"pilot_cal1", "pilot_cal2", "pilot_targ1", "pilot_targ2"}
    for rule, resources in asked.items():
        mem = 8000 if rule == "pilot_cal2" else 4000
        assert f"mem_mb={mem}," in resources and "runtime=600" in resources and "cpus_per_task=1" in resources
    local = runs.snakemake(tmp_path, "-n")
    assert "cannot reach it" not in local.stdout
