"""The picas executor's pure parts: token ids, token fields, rerun decisions, the job's command.
No server here; `test_executor.py` runs the executor for real."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrt_workflow.token import modifiers
from snakemake_executor_plugin_picas import jobs
from snakemake_executor_plugin_picas.settings import ExecutorSettings, check, project_couchdb
from snakemake_interface_common.exceptions import WorkflowError

PLUGIN = Path(jobs.__file__).parent


def job_doc(attempt=1, **info):
    identity = jobs.identity("part", {"i": "3"}, ["parts/3.txt"])
    token_id = jobs.token_id("snakemake", "proj-1a2b3c4d", "part", identity, attempt)
    return jobs.job_token("snakemake", token_id, scope="proj-1a2b3c4d", run="run-1", command_="cd /x && true",
                          needed=["AWS_SECRET"], resources_={"threads": 2, "mem_mb": 100},
                          info={"rule": "part", "attempt": attempt, "output": ["parts/3.txt"], **info})


def test_a_jobs_token_id_is_its_identity_and_attempt():
    one = jobs.identity("part", {"i": "3", "s": "a"}, ["b.txt", "a.txt"])
    assert one == jobs.identity("part", {"s": "a", "i": "3"}, ["a.txt", "b.txt"])  # order does not matter
    assert one != jobs.identity("part", {"i": "4", "s": "a"}, ["b.txt", "a.txt"])
    first = jobs.token_id("snakemake", "proj-1", "part", one, 1)
    assert first == jobs.token_id("snakemake", "proj-1", "part", one, 1)
    assert first.startswith("snakemake_proj-1_part_") and first.endswith("_a1")
    assert jobs.token_id("snakemake", "proj-1", "part", one, 2).endswith("_a2")
    assert jobs.belongs(first, "snakemake", "proj-1") and not jobs.belongs(first, "snakemake", "proj-2")


def test_the_default_scope_tells_two_folders_of_the_same_name_apart(tmp_path):
    a, b = tmp_path / "a" / "work flow", tmp_path / "b" / "work flow"
    assert jobs.default_scope(str(a)).startswith("work-flow-")
    assert jobs.default_scope(str(a)) != jobs.default_scope(str(b))
    assert jobs.default_scope(str(a)) == jobs.default_scope(str(a))


def test_a_new_token_carries_the_job_and_its_run():
    doc = job_doc()
    assert (doc["type"], doc["OBSID"], doc["lrt_run"], doc["command"]) == \
        ("snakemake", "proj-1a2b3c4d", "run-1", "cd /x && true")
    assert doc["environment"] == {"from_pilot": ["AWS_SECRET"]} and doc["resources"]["threads"] == 2
    assert modifiers.state(doc) == "todo" and [e["event"] for e in doc["history"]] == ["submitted"]


def test_many_outputs_are_counted_not_all_listed():
    doc = job_doc(output=[f"o{i}" for i in range(1000)])
    assert len(doc["snakemake"]["output"]) == jobs.OUTPUTS_LISTED and doc["snakemake"]["outputs"] == 1000


def test_resources_keep_the_numbers_and_leave_snakemakes_own_out():
    found = jobs.resources(4, {"_cores": 4, "_nodes": 1, "mem_mb": 1000, "runtime": 30, "tmpdir": "/tmp",
                               "gpu": True})
    assert found == {"threads": 4, "mem_mb": 1000, "runtime": 30}


@pytest.mark.parametrize("state, named, action", [
    ("todo", False, jobs.ADOPT), ("locked", False, jobs.ADOPT),
    ("done", True, jobs.ADOPT), ("done", False, jobs.RENEW), ("error", True, jobs.RENEW),
])
def test_what_a_rerun_does_with_a_token_it_finds(state, named, action):
    doc = job_doc()
    if state != "todo":
        modifiers.claim(doc, worker_id="w", hostname="h")
    if state == "done":
        modifiers.finish(doc, 0)
    if state == "error":
        modifiers.cancel(doc, "stopped")
    assert jobs.on_rerun(doc, named) == action


def test_adopting_gives_a_waiting_token_the_new_command_but_not_a_running_one():
    waiting, running = job_doc(), modifiers.claim(job_doc(), worker_id="w", hostname="h")
    jobs.adopt(waiting, "run-2", "new command")
    jobs.adopt(running, "run-2", "new command")
    assert (waiting["lrt_run"], waiting["command"]) == ("run-2", "new command")
    assert (running["lrt_run"], running["command"]) == ("run-2", "cd /x && true")
    assert running["worker_id"] == "w" and running["history"][-1]["event"] == "adopted"


def test_renewing_runs_the_job_again_without_the_old_logs():
    doc = modifiers.claim(job_doc(), worker_id="w", hostname="h")
    modifiers.finish(doc, 3)
    doc["_attachments"] = {"stderr.log": {"data": ""}}
    fresh = job_doc()
    fresh.update(lrt_run="run-2", command="new")
    jobs.renew(doc, fresh)
    assert modifiers.state(doc) == "todo" and (doc["lrt_run"], doc["command"]) == ("run-2", "new")
    assert doc["_attachments"] == {} and doc["scrub_count"] == 0 and doc["last_exit_code"] == 3
    assert [e["event"] for e in doc["history"]][-1] == "resubmitted"


def test_a_running_token_is_stale_only_after_the_lease():
    assert jobs.stale(["locked", "", 1000], 60, 1061)
    assert not jobs.stale(["locked", "", 1000], 60, 1059)
    assert not jobs.stale(["todo", "", 0], 60, 5000) and not jobs.stale(["done", 0, 1000], 60, 5000)


def test_a_tokens_own_status_row_says_what_the_run_view_would():
    doc = job_doc()
    assert jobs.row_value(doc) == ["todo", "", 0]
    modifiers.claim(doc, worker_id="w", hostname="h", now=1000)
    modifiers.beat(doc, now=1030)
    assert jobs.row_value(doc) == ["locked", "", 1030]
    modifiers.finish(doc, 3, now=1040)
    assert jobs.row_value(doc)[:2] == ["error", 3]


def test_the_failure_message_has_the_reason_and_the_end_of_stderr():
    doc = modifiers.claim(job_doc(), worker_id="w", hostname="node7")
    modifiers.finish(doc, 3)
    stderr = "\n".join(f"line {i}" for i in range(100)).encode()
    text = jobs.failure_message(doc, stderr)
    assert "exit code 3" in text and "node7" in text and "line 99" in text and "line 79" not in text
    assert "reason: cancelled" in jobs.failure_message(modifiers.cancel(job_doc(), "cancelled"), None)


def test_secrets_are_found_by_value_and_named_by_name():
    assert jobs.secrets_in("--config key=hunter22", {"API_KEY": "hunter22", "EMPTY": "", "NONE": None}) == ["API_KEY"]
    assert jobs.secrets_in("nothing here", {"API_KEY": "hunter22"}) == []


def run_command(command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/bash", "-c", command], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})}, start_new_session=True)


def test_the_command_runs_in_the_workflow_folder_and_keeps_the_jobs_exit_code(tmp_path):
    done = run_command(jobs.command(str(tmp_path), "pwd; exit 3"))
    assert (done.returncode, done.stdout.strip()) == (3, str(tmp_path))


def test_a_variable_missing_on_the_pilot_fails_the_job_naming_it(tmp_path):
    done = run_command(jobs.command(str(tmp_path), "echo ran", ["LRT_NEEDED"]))
    assert done.returncode != 0 and "the job needs LRT_NEEDED" in done.stderr and "ran" not in done.stdout
    assert run_command(jobs.command(str(tmp_path), "echo ran", ["LRT_NEEDED"]), {"LRT_NEEDED": ""}).stdout == "ran\n"


def test_the_watchdog_ends_the_whole_job_when_its_pilot_is_killed(tmp_path):
    """A pilot killed with SIGKILL takes only the job's first process with it; the watchdog takes the rest."""
    pids, group = tmp_path / "pids", tmp_path / "group"
    job = jobs.command(str(tmp_path), f"echo $$ > {group}; sleep 600 & echo $! > {pids}; wait")
    pilot = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; from lrt_workflow.pilot.job import die_with_parent; "
                               "subprocess.run(['/bin/bash', '-c', sys.argv[1]], start_new_session=True, "
                               "preexec_fn=die_with_parent)", job])
    try:
        deadline = time.monotonic() + 30
        while not pids.exists() or not pids.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sleeper = int(pids.read_text())
        pilot.send_signal(signal.SIGKILL)
        pilot.wait()
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{sleeper}") and "Z" not in Path(f"/proc/{sleeper}/stat").read_text().split()[2]:
            assert time.monotonic() < deadline, "the job's child outlived its pilot"
            time.sleep(0.05)
    finally:
        pilot.kill()
        pilot.wait()
        if group.exists():  # whatever the watchdog left (nothing, unless this test fails)
            try:
                os.killpg(int(group.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_settings_refuse_a_password_in_the_url_and_bad_names():
    check(ExecutorSettings(url="https://picas.example.org:6984"))
    for wrong in (ExecutorSettings(url="https://alice:pw@picas.example.org"), ExecutorSettings(token_type="1x"),
                  ExecutorSettings(scope="a/b"), ExecutorSettings(lease_seconds=0)):
        with pytest.raises(WorkflowError) as refused:
            check(wrong)
        assert "pw@" not in str(refused.value)


def test_only_an_lrt_configurations_couchdb_section_is_read(tmp_path):
    assert project_couchdb(tmp_path) == {}
    (tmp_path / "config.yaml").write_text("samples: [a, b]\n")
    assert project_couchdb(tmp_path) == {}
    (tmp_path / "config.yaml").write_text("couchdb: {url: 'https://picas.example.org', database: mine}\n")
    assert project_couchdb(tmp_path) == {"url": "https://picas.example.org", "database": "mine"}


def test_the_plugin_speaks_http_only_through_tokenstore_and_its_modules_are_small():
    for path in PLUGIN.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not {m for m in imported if m.split(".")[0] in ("requests", "urllib3", "cloudant", "http")}, path
        assert len(path.read_text().splitlines()) <= 450, path
