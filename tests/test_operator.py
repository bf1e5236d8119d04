"""What an operator meets: the rough edges a new user found, each checked through the real commands."""

import os
import re
import signal
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from lrt_workflow.couchdb.embedded import EmbeddedServer
from lrt_workflow.pilot.worker import WorkerReport
from project import OBSID, ROOT, one_step, read_config, save_config, wait_until

pytestmark = pytest.mark.slow

OUT = Path("results") / OBSID


def server_of(folder: Path) -> EmbeddedServer:
    return EmbeddedServer(folder / ".lrt" / "couchdb")


def failing_project(folder: Path) -> None:
    """A one-step project whose 3 jobs fail, without retries."""
    one_step(folder, command='echo "no such calibrator" >&2; exit 4', wait={"max_scrub": 0})


def test_lrt_run_keeps_the_default_profile_whatever_the_arguments(tmp_path, runs):
    one_step(tmp_path)
    (tmp_path / "faster.yaml").write_text(yaml.safe_dump({"wait": {"poll_seconds": 0.2}}))
    run = runs.finish(runs.lrt_run(tmp_path, "--configfile", "faster.yaml"))
    assert "Using workflow specific profile" in run.stdout and "cores have to be specified" not in run.stdout
    assert (tmp_path / OUT / "report.html").exists()


def test_after_a_failed_run_the_recovery_recipe_works_by_itself(tmp_path, runs):
    failing_project(tmp_path)
    failed = runs.finish(runs.lrt_run(tmp_path), check=False)
    assert failed.returncode != 0 and "| no such calibrator" in failed.stdout
    assert server_of(tmp_path).running() is None, "the failed run stopped its server"
    # The README's recipe: fix the cause, reset the failed tokens, run again. Each command starts the
    # embedded server it needs, and stops it afterwards.
    config = read_config(tmp_path)
    config["token"]["command"] = "true"
    save_config(tmp_path, config)
    reset = runs.lrt(tmp_path, "reset", "--view", "error")
    assert reset.returncode == 0 and "reset 3 tokens of view error" in reset.stdout, reset.stdout
    assert server_of(tmp_path).running() is None
    logs = runs.lrt(tmp_path, "logs", f"demo_{OBSID}_SB100", "--stderr")
    assert logs.returncode == 0 and "no such calibrator" in logs.stdout
    runs.finish(runs.lrt_run(tmp_path))
    assert '"done": 3' in (tmp_path / OUT / "status.json").read_text()


def test_the_lrt_commands_merge_an_overlay_over_config_yaml_as_the_workflow_does(tmp_path, runs):
    one_step(tmp_path)
    runs.finish(runs.lrt_run(tmp_path))
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump({"wait": {"max_scrub": 5}}))  # not a whole config
    status = runs.lrt(tmp_path, "status", "--config", "overlay.yaml")
    assert status.returncode == 0, status.stdout
    assert f"demo ({OBSID}): todo=0 locked=0 done=3 error=0 total=3" in status.stdout


def test_ctrl_c_under_lrt_run_stops_without_tracebacks(tmp_path, runs):
    one_step(tmp_path, command="sleep 60")
    run = runs.lrt_run(tmp_path)
    wait_until(lambda: list((tmp_path / OUT / "logs").glob("pilot-*.log")), run)
    time.sleep(1)  # let the pilots claim; no race is staged here, only a user pressing Ctrl-C
    os.killpg(run.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
    output, _ = run.communicate(timeout=120)
    assert run.returncode != 0
    assert "Traceback" not in output, output[-4000:]


def test_a_second_run_is_refused_with_advice_that_stops_the_first(tmp_path, runs):
    one_step(tmp_path, command="sleep 30")
    first = runs.lrt_run(tmp_path)
    wait_until(lambda: list((tmp_path / OUT / "logs").glob("pilot-*.log")), first)
    second = runs.finish(runs.lrt_run(tmp_path), check=False)
    assert second.returncode == 1 and "stop it as Ctrl-C would (kill -INT <pid>" in second.stdout, second.stdout


def test_a_misspelt_key_gets_a_suggestion_and_no_traceback(tmp_path, runs):
    config = one_step(tmp_path)
    config["chunk_szie"] = config.pop("chunk_size")
    save_config(tmp_path, config)
    run = runs.snakemake(tmp_path, check=False)
    assert run.returncode == 1
    assert "unknown key 'chunk_szie' (did you mean 'chunk_size'?)" in run.stdout
    assert 'File "' not in run.stdout and "Traceback" not in run.stdout, run.stdout
    assert not (tmp_path / "results").exists(), "no results/unknown or any other folder"


@pytest.mark.parametrize("finished", [False, True])
def test_a_missing_template_is_listed_with_every_other_problem(tmp_path, runs, finished):
    config = one_step(tmp_path)
    if finished:
        runs.snakemake(tmp_path)
    config["token"].update(template="example/gone.json", attachments=["example/also-gone.sh"])
    save_config(tmp_path, config)
    run = runs.snakemake(tmp_path, check=False)
    assert run.returncode == 1, run.stdout
    assert "token.template: example/gone.json: no such file" in run.stdout
    assert "token.attachments[0]: example/also-gone.sh: no such file" in run.stdout
    assert "MissingInputException" not in run.stdout and "Nothing to be done" not in run.stdout


def test_bad_input_leaves_no_results_folder(tmp_path, runs):
    one_step(tmp_path)
    (tmp_path / "example" / "srm.txt").write_text("not a url\n")
    run = runs.snakemake(tmp_path, check=False)
    assert run.returncode == 1 and "line 1: not a URL" in run.stdout
    assert not (tmp_path / "results").exists()


def test_archive_and_restore_by_hand(tmp_path, runs):
    one_step(tmp_path, archive={"purge": True})
    runs.finish(runs.lrt_run(tmp_path))
    archived = runs.lrt(tmp_path, "archive", "--out-dir", "saved")
    assert archived.returncode == 0 and (tmp_path / "saved" / "tokens_demo.tar.gz").exists()
    with tarfile.open(tmp_path / "saved" / "tokens_demo.tar.gz") as tar:
        assert not [m for m in tar.getnames() if m.endswith(".json") and "/tokens/" in m], "purged: none left"
    restored = runs.lrt(tmp_path, "restore", str(OUT / "tokens_demo.tar.gz"))
    assert restored.returncode == 0 and "created 3 tokens" in restored.stdout
    status = runs.lrt(tmp_path, "status")
    assert f"demo ({OBSID}): todo=0 locked=0 done=3 error=0 total=3" in status.stdout


def test_step_logs_say_each_thing_once_with_one_time_format(tmp_path, runs):
    one_step(tmp_path)
    runs.finish(runs.lrt_run(tmp_path))
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
    for log in (tmp_path / OUT / "logs").glob("*.log"):
        for line in log.read_text().splitlines():
            assert stamp.match(line), (log.name, line)
            words = line[20:].split()
            assert words[:2] != words[2:4], (log.name, line)  # no "tokens: tokens:"
    pilot = (tmp_path / OUT / "logs" / "pilot-0.log").read_text()
    assert re.search(r"processed \d+ tokens?, \d+ failed", pilot)


def test_counts_are_written_in_words_that_agree_with_their_number():
    assert str(WorkerReport(processed=["a"], conflicts=1, requests=1)) == \
        "processed 1 token (0 failed), 1 claim conflict, 1 request"
    assert str(WorkerReport(processed=["a", "b"], requests=5)) == \
        "processed 2 tokens (0 failed), 0 claim conflicts, 5 requests"


def test_status_watch_prints_the_time_with_each_refresh(tmp_path, runs):
    one_step(tmp_path)
    runs.finish(runs.lrt_run(tmp_path))
    watch = runs.start(tmp_path, sys.executable, "-m", "lrt_workflow", "status", "--watch", "0.2")
    wait_until(lambda: server_of(tmp_path).running(), watch)
    time.sleep(1.5)  # a few refreshes; nothing races here
    runs.kill(watch)
    output = watch.stdout.read()
    assert len(re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", output, re.M)) >= 2, output


def test_no_test_reads_the_users_own_config_yaml():
    readers = [path.name for path in (ROOT / "tests").glob("*.py")
               if re.search(r'ROOT\s*/\s*"config\.yaml"', path.read_text()) and path.name != "test_operator.py"]
    assert readers == []


def test_the_runs_fixture_ends_a_run_with_its_children(tmp_path):
    from project import Runs

    runs = Runs()
    parent = runs.start(tmp_path, "bash", "-c", "sleep 300 & echo $! > child.pid; wait")
    child = int(wait_until(lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text()))
    runs.kill_all()
    wait_until(lambda: not os.path.exists(f"/proc/{child}") or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2],
               timeout=10)
    assert parent.poll() is not None
