"""The real Snakemake workflow end to end, in its one-step form: on its own embedded server, or on the
server of LRT_TEST_COUCHDB as the usual PiCaS account (see `workflow_couchdb` in conftest.py).

Project folders and runs come from tests/project.py; bad input is tests/test_bad_input.py's.
"""

import json
import sys
import tarfile
import textwrap

import pytest

import project
from project import OBSID

pytestmark = pytest.mark.slow

#: What a one-step run leaves in results/<OBSID>/ (README, "What the workflow writes").
RESULT_FILES = {
    "srm.txt", "inputs.json", "summary.json", "chunks/index.json", "chunks/100.txt", "chunks/110.txt",
    "chunks/120.txt", "design.json", "tokens.json", "attachments.json", "pilots/0.json", "pilots/1.json",
    "status.json", "results.json", "tokens_demo.tar.gz", "report.html", "config.json", "logs/polls.jsonl",
    *(f"logs/{rule}.log" for rule in ("srmlist", "chunks", "design", "tokens", "attachments", "pilot-0",
                                      "pilot-1", "wait", "archive", "report")),
}


def out(folder):
    return folder / "results" / OBSID


def test_three_chunk_observation_runs_to_completion_and_a_second_run_does_nothing(tmp_path, workflow_couchdb, runs):
    target = workflow_couchdb
    project.one_step(tmp_path, target)

    run = runs.snakemake(tmp_path, target=target)

    found = {str(p.relative_to(out(tmp_path))) for p in out(tmp_path).rglob("*") if p.is_file()}
    assert RESULT_FILES <= found, f"missing: {sorted(RESULT_FILES - found)}"
    for rule in ("srmlist_demo", "chunks_demo", "design_demo", "tokens_demo", "attachments_demo", "pilot_demo",
                 "wait_demo", "archive_demo", "report"):
        assert f"rule {rule}:" in run.stdout, f"no job of rule {rule}"
    status = json.loads((out(tmp_path) / "status.json").read_text())
    assert status["counts"] == {"todo": 0, "locked": 0, "done": 3, "error": 0, "total": 3}
    polls = [json.loads(line) for line in (out(tmp_path) / "logs" / "polls.jsonl").read_text().splitlines()]
    assert polls and polls[-1]["done"] == 3
    with tarfile.open(out(tmp_path) / "tokens_demo.tar.gz") as tar:
        names = tar.getnames()
    for start in ("100", "110", "120"):
        assert f"demo/tokens/demo_{OBSID}_SB{start}.json" in names
        assert f"demo/attachments/demo_{OBSID}_SB{start}/stdout.log" in names
        assert f"demo/attachments/demo_{OBSID}_SB{start}/job.sh" in names
    assert (out(tmp_path) / "report.html").read_text().count("<svg") == 2
    assert target.stopped(tmp_path)
    tokens = target.tokens(tmp_path)
    assert len(tokens) == 3 and all(t["status"] == "done" for t in tokens)
    manifest = [t for t in tokens if t["_id"].endswith("SB110")][0]
    assert manifest["STARTSB"] == "110" and manifest["OBSID"] == OBSID

    again = runs.snakemake(tmp_path, target=target)
    assert "Nothing to be done" in again.stdout

    # The attachments step again, as a rerun after a failure repeats it: no token is rewritten.
    with target.serving(tmp_path):
        revisions = {t["_id"]: t["_rev"] for t in target.tokens(tmp_path)}
        runs.lrt(tmp_path, "step", "attachments", "--config", f"results/{OBSID}/config.json",
                 "--tokens", f"results/{OBSID}/tokens.json", "--out", "attachments-again.json",
                 target=target, check=True)
        assert json.loads((tmp_path / "attachments-again.json").read_text())["attachments"] == {"job.sh": 0}
        assert {t["_id"]: t["_rev"] for t in target.tokens(tmp_path)} == revisions


def test_failing_job_is_retried_then_reported_with_its_id(tmp_path, workflow_couchdb, runs):
    target = workflow_couchdb
    command = '[ "$STARTSB" != "110" ] || { echo "cannot do 110" >&2; exit 5; }; bash "$JOBSCRIPT"'
    project.one_step(tmp_path, target, token={"command": command}, wait={"max_scrub": 1})

    result = runs.snakemake(tmp_path, target=target, check=False)

    assert result.returncode == 1, result.stdout[-3000:]
    assert f"demo_{OBSID}_SB110" in result.stdout
    assert "2 of 3 tokens are done" in result.stdout and "1 failed after 1 retries" in result.stdout
    assert "cannot do 110" in result.stdout, "the failed job's stderr is not shown"
    assert "logs/tokens/" in result.stdout and "lrt logs TOKEN_ID" in result.stdout
    assert (out(tmp_path) / "logs" / "tokens" / f"demo_{OBSID}_SB110.stderr.log").read_text() == "cannot do 110\n"
    failed = [t for t in target.tokens(tmp_path) if t["_id"].endswith("SB110")][0]
    assert failed["scrub_count"] == 1 and failed["output"] == 5
    assert not (out(tmp_path) / "status.json").exists()
    assert not (out(tmp_path) / "pilots").exists() or not list((out(tmp_path) / "pilots").iterdir()), \
        "the pilots' reports must go, so that a rerun starts pilots again"
    assert target.stopped(tmp_path)

    shown = runs.lrt(tmp_path, "logs", f"demo_{OBSID}_SB110", target=target)
    assert shown.returncode == 0 and "cannot do 110" in shown.stdout, shown.stdout[-3000:]
    assert target.stopped(tmp_path), "lrt logs left the embedded server running"


def test_failures_within_the_allowed_fraction_pass(tmp_path, workflow_couchdb, runs):
    target = workflow_couchdb
    command = '[ "$STARTSB" != "110" ] || exit 5; bash "$JOBSCRIPT"'
    project.one_step(tmp_path, target, token={"command": command}, wait={"max_scrub": 0, "max_error_fraction": 0.5})

    runs.snakemake(tmp_path, target=target)

    status = json.loads((out(tmp_path) / "status.json").read_text())
    assert status["errors"] == [f"demo_{OBSID}_SB110"]
    assert status["counts"] == {"todo": 0, "locked": 0, "done": 2, "error": 1, "total": 3}


def test_launcher_none_waits_for_external_picas_workers(tmp_path, workflow_couchdb, runs):
    target = workflow_couchdb
    project.one_step(tmp_path, target, pilots={"launcher": "none"})
    run = runs.start_snakemake(tmp_path, target=target)
    project.wait_until(lambda: (out(tmp_path) / "attachments.json").exists(), run)
    url = target.url(tmp_path)
    # The picas client has no environment variables of its own: the credentials are read
    # from ours, never written into the script (a command line).
    actor = textwrap.dedent(f"""
        import os
        from picas.actors import RunActor
        from picas.clients import CouchDB
        from picas.modifiers import BasicTokenModifier

        class Actor(RunActor):
            def process_task(self, task):
                task["exit_code"] = 0
                task["processed_by"] = "picas"
                BasicTokenModifier().close(task)

        client = CouchDB(url={url.rstrip('/')!r}, db={target.database!r}, username=os.environ.get("PICAS_USER"),
                         password=os.environ.get("PICAS_PASSWORD", ""))
        Actor(client, view="todo", design_doc="demo").run()
    """)
    picas = runs.start(tmp_path, sys.executable, "-c", actor, target=target)
    runs.finish(picas, timeout=120)
    runs.finish(run, timeout=180)

    assert len(json.loads((out(tmp_path) / "tokens.json").read_text())["ids"]) == 3
    status = json.loads((out(tmp_path) / "status.json").read_text())
    assert status["counts"]["done"] == 3
    assert all(t["processed_by"] == "picas" for t in target.tokens(tmp_path))
    assert not (out(tmp_path) / "pilots").exists()
