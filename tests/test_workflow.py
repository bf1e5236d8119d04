"""The real Snakemake workflow end to end: on its own embedded server, or on the server of
LRT_TEST_COUCHDB as the usual PiCaS account (see `workflow_couchdb` in conftest.py)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SRM_50 = ROOT / "tests" / "data" / "srm" / "srm_50_sara.txt"
OBSID = "L229507"

pytestmark = pytest.mark.slow


def write_project(folder: Path, target, subbands: int = 30, **overrides) -> Path:
    """A working folder with a config for ``subbands`` subbands in chunks of 10, its tokens kept
    where ``target`` (a `WorkflowCouchDB`) says."""
    example = folder / "example"
    example.mkdir(parents=True, exist_ok=True)
    lines = SRM_50.read_text().splitlines()[:subbands]
    (example / "srm.txt").write_text("\n".join(lines) + "\n")
    shutil.copy(ROOT / "example" / "token.json", example / "token.json")
    shutil.copy(ROOT / "example" / "job.sh", example / "job.sh")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["wait"]["poll_seconds"] = 1
    config["pilots"]["count"] = 2
    config["couchdb"].update(target.config)
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if name:
            config[section][name] = value
        else:
            config[section] = value
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def snakemake(folder: Path, *extra, check=True, env=None, timeout=300):
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
               "--profile", str(ROOT / "profiles" / "local"), *extra]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def out(folder: Path) -> Path:
    return folder / "results" / OBSID


def test_three_chunk_observation_runs_to_completion_and_a_second_run_does_nothing(tmp_path, workflow_couchdb):
    target = workflow_couchdb
    folder = write_project(tmp_path, target)
    snakemake(folder, env=target.environment)
    status = json.loads((out(folder) / "status.json").read_text())
    assert status["counts"] == {"todo": 0, "locked": 0, "done": 3, "error": 0, "total": 3}
    archive = out(folder) / "tokens_demo.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    for start in ("100", "110", "120"):
        assert f"demo/tokens/demo_{OBSID}_SB{start}.json" in names
        assert f"demo/attachments/demo_{OBSID}_SB{start}/stdout.log" in names
        assert f"demo/attachments/demo_{OBSID}_SB{start}/job.sh" in names
    assert (out(folder) / "report.html").read_text().count("<svg") == 2
    assert target.stopped(folder)
    tokens = target.tokens(folder)
    assert len(tokens) == 3 and all(t["status"] == "done" for t in tokens)
    manifest = [t for t in tokens if t["_id"].endswith("SB110")][0]
    assert manifest["STARTSB"] == "110" and manifest["OBSID"] == OBSID

    again = snakemake(folder, env=target.environment)
    assert "Nothing to be done" in again.stdout + again.stderr

    # The attachments step again, as a rerun after a failure repeats it: no token is rewritten.
    with target.serving(folder):
        revisions = {t["_id"]: t["_rev"] for t in target.tokens(folder)}
        step = subprocess.run(
            [sys.executable, "-m", "lrt_workflow", "step", "attachments", "--config", str(out(folder) / "config.json"),
             "--tokens", str(out(folder) / "tokens.json"), "--out", str(tmp_path / "attachments-again.json")],
            cwd=folder, capture_output=True, text=True, timeout=120, env={**os.environ, **target.environment},
        )
        assert step.returncode == 0, step.stderr
        assert json.loads((tmp_path / "attachments-again.json").read_text())["attachments"] == {"job.sh": 0}
        assert {t["_id"]: t["_rev"] for t in target.tokens(folder)} == revisions


def test_failing_job_is_retried_then_reported_with_its_id(tmp_path, workflow_couchdb):
    target = workflow_couchdb
    command = '[ "$STARTSB" != "110" ] || { echo "cannot do 110" >&2; exit 5; }; bash "$JOBSCRIPT"'
    folder = write_project(tmp_path, target, token__command=command, wait__max_scrub=1)
    result = snakemake(folder, check=False, env=target.environment)
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert f"demo_{OBSID}_SB110" in text and "1 of 3 tokens failed" in text
    assert "stderr.log" in text
    failed = [t for t in target.tokens(folder) if t["_id"].endswith("SB110")][0]
    assert failed["scrub_count"] == 1 and failed["output"] == 5
    assert not (out(folder) / "status.json").exists()
    assert target.stopped(folder)


def test_failures_within_the_allowed_fraction_pass(tmp_path, workflow_couchdb):
    target = workflow_couchdb
    command = '[ "$STARTSB" != "110" ] || exit 5; bash "$JOBSCRIPT"'
    folder = write_project(tmp_path, target, token__command=command, wait__max_scrub=0, wait__max_error_fraction=0.5)
    snakemake(folder, env=target.environment)
    status = json.loads((out(folder) / "status.json").read_text())
    assert status["errors"] == [f"demo_{OBSID}_SB110"]


@pytest.mark.parametrize(
    "broken, expected",
    [
        ("config", "unknown key 'colour'"),
        ("srm", "L999999"),
    ],
)
def test_bad_input_fails_before_any_token_exists(tmp_path, workflow_couchdb, broken, expected):
    target = workflow_couchdb
    folder = write_project(tmp_path, target)
    if broken == "config":
        config = yaml.safe_load((folder / "config.yaml").read_text())
        config["token"]["colour"] = "blue"
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
    else:
        srm = folder / "example" / "srm.txt"
        srm.write_text(srm.read_text() + SRM_50.read_text().splitlines()[40].replace("L229507", "L999999") + "\n")
    result = snakemake(folder, check=False, env=target.environment)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
    assert target.untouched(folder)


def test_launcher_none_waits_for_external_picas_workers(tmp_path, workflow_couchdb):
    target = workflow_couchdb
    folder = write_project(tmp_path, target, pilots__launcher="none")
    environment = {**os.environ, **target.environment}
    run = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--profile", str(ROOT / "profiles" / "local")],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
    )
    try:
        tokens_file = out(folder) / "tokens.json"
        deadline = time.monotonic() + 120
        while not (out(folder) / "attachments.json").exists():
            assert run.poll() is None, run.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        url = target.url(folder)
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
        subprocess.run([sys.executable, "-c", actor], check=True, timeout=120, capture_output=True, env=environment)
        output, _ = run.communicate(timeout=180)
        assert run.returncode == 0, output[-4000:]
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)
            run.wait(timeout=60)
    assert len(json.loads(tokens_file.read_text())["ids"]) == 3
    status = json.loads((out(folder) / "status.json").read_text())
    assert status["counts"]["done"] == 3
    assert all(t["processed_by"] == "picas" for t in target.tokens(folder))
    assert not (out(folder) / "pilots").exists()
