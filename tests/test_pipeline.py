"""A pipeline of chained steps (cal1 > cal2 > targ1 > targ2) through the real workflow and a real server.

Every job first appends its token id to a ledger, so a test counts how often each ran.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from project import CALIBRATOR, TARGET, merged, one_step, pipeline, read_config, save_config, wait_until

pytestmark = pytest.mark.slow

STEPS = ("cal1", "cal2", "targ1", "targ2")


def ledger_commands(folder: Path, before: str = "", **per_step: str) -> dict:
    """Each step's command: note the token in the ledger, then (``per_step``, else ``before``) and the job."""
    return {"steps": {step: {"token": {"command": f'echo "$LRT_TOKEN_ID" >> {folder}/ledger.txt; '
                                                  f'{per_step.get(step, before)} bash "$JOBSCRIPT"'}}
                      for step in STEPS}}


def ledger(folder: Path) -> Counter:
    path = folder / "ledger.txt"
    return Counter(path.read_text().split()) if path.exists() else Counter()


def step_dir(folder: Path, step: str) -> Path:
    return folder / "results" / (CALIBRATOR if step.startswith("cal") else TARGET) / step


def read(path: Path):
    return json.loads(path.read_text())


def tokens_of(target, folder: Path, step: str) -> dict[str, dict]:
    return {doc["_id"]: doc for doc in target.tokens(folder) or [] if doc.get("type") == step}


def assert_complete(folder: Path, counts: dict) -> None:
    for step, total in counts.items():
        status = read(step_dir(folder, step) / "status.json")
        assert (status["counts"]["done"], status["counts"]["total"]) == (total, total), step


def test_the_chain_runs_with_results_flowing_from_step_to_step(tmp_path, runs, workflow_couchdb):
    target = workflow_couchdb
    pipeline(tmp_path, target, **ledger_commands(tmp_path))
    run = runs.snakemake(tmp_path, target=target)
    assert_complete(tmp_path, {"cal1": 8, "cal2": 1, "targ1": 20, "targ2": 2})
    assert sorted(ledger(tmp_path).values()) == [1] * 31, "every job ran exactly once"

    # cal1's results, in subband order, are cal2's input: one token for all of them
    cal1 = read(step_dir(tmp_path, "cal1") / "results.json")["results"]
    assert [item["subband"] for item in cal1] == list(range(8))
    assert (step_dir(tmp_path, "cal2") / "srm.txt").read_text().split() == [item["url"] for item in cal1]
    assert [c["count"] for c in read(step_dir(tmp_path, "cal2") / "chunks" / "index.json")["chunks"]] == [8]

    # cal2's solutions reach every targ1 token and every targ1 job
    [solutions] = read(step_dir(tmp_path, "cal2") / "results.json")["results"]
    digest = Path(solutions["url"].removeprefix("file://")).read_text().splitlines()[-1]
    targ1 = tokens_of(target, tmp_path, "targ1")
    assert len(targ1) == 20 and {doc["CAL_SOLUTIONS"] for doc in targ1.values()} == {solutions["url"]}
    for item in read(step_dir(tmp_path, "targ1") / "results.json")["results"]:
        assert Path(item["url"].removeprefix("file://")).read_text().rstrip().endswith(digest)

    # targ1's results, chunked by targ2's own size, make targ2's two groups
    chunks = read(step_dir(tmp_path, "targ2") / "chunks" / "index.json")["chunks"]
    assert [(c["name"], c["count"]) for c in chunks] == [("100", 10), ("110", 10)]
    products = read(step_dir(tmp_path, "targ2") / "results.json")["results"]
    assert all(Path(p["url"].removeprefix("file://")).stat().st_size > 0 for p in products)
    assert "final products of targ2 (2):" in run.stdout and products[0]["url"] in run.stdout
    report = (tmp_path / "results" / TARGET / "report.html").read_text()
    assert all(f'id="step-{step}"' in report or f">{step}<" in report for step in STEPS)

    again = runs.snakemake(tmp_path, target=target)
    assert "Nothing to be done" in again.stdout and sum(ledger(tmp_path).values()) == 31


def test_a_dry_run_shows_the_whole_chain_and_writes_nothing(tmp_path, runs):
    pipeline(tmp_path)
    dry = runs.snakemake(tmp_path, "-n")
    for phase in ("srmlist", "chunks", "design", "tokens", "attachments", "pilot", "wait", "archive"):
        for step in STEPS:
            assert f"{phase}_{step}" in dry.stdout
    assert runs.snakemake(tmp_path, "--lint").returncode == 0
    assert not (tmp_path / "results").exists() and not (tmp_path / ".lrt").exists()


FAILING = 'if [ "$STARTSB" = 105 ]; then echo "broken subband" >&2; exit 3; fi;'


@pytest.mark.parametrize("fraction", [0.9, 1.0])
def test_a_step_is_complete_at_its_success_fraction(tmp_path, runs, workflow_couchdb, fraction):
    target = workflow_couchdb
    pipeline(tmp_path, target, calibrator=4, **merged(
        ledger_commands(tmp_path, targ1=FAILING),
        {"steps": {"targ1": {"wait": {"success_fraction": fraction, "max_scrub": 0}}}}))
    run = runs.snakemake(tmp_path, target=target, check=False)
    if fraction == 0.9:
        assert run.returncode == 0, run.stdout[-4000:]
        status = read(step_dir(tmp_path, "targ1") / "status.json")
        assert (status["counts"]["done"], status["counts"]["error"]) == (19, 1)
        assert len(read(step_dir(tmp_path, "targ2") / "inputs.json")["items"]) == 19
        return
    assert run.returncode != 0
    assert "19 of 20 tokens are done (95%); the step needs 100%" in run.stdout
    assert "targ1_L229587_SB105" in run.stdout and "| broken subband" in run.stdout
    saved = step_dir(tmp_path, "targ1") / "logs" / "tokens" / "targ1_L229587_SB105.stderr.log"
    assert saved.read_text() == "broken subband\n"
    assert not (step_dir(tmp_path, "targ2") / "tokens.json").exists()
    assert not list((step_dir(tmp_path, "targ1") / "pilots").glob("*.json")), "a failed wait hands back to pilots"

    # The cause is fixed in the configuration: the tokens that are not done take the new command,
    # the done ones keep theirs; after 'lrt reset --view error' the rerun finishes by itself.
    config = read_config(tmp_path)
    config["steps"]["targ1"]["token"]["command"] = ledger_commands(tmp_path)["steps"]["targ1"]["token"]["command"]
    save_config(tmp_path, config)
    assert runs.snakemake(tmp_path, target=target, check=False).returncode != 0  # not retried: max_scrub 0
    docs = tokens_of(target, tmp_path, "targ1")
    assert FAILING not in docs["targ1_L229587_SB105"]["command"]
    assert FAILING in docs["targ1_L229587_SB104"]["command"]
    reset = runs.lrt(tmp_path, "reset", "--view", "error", "--step", "targ1", target=target)
    assert reset.returncode == 0 and "targ1_L229587_SB105" in reset.stdout
    runs.finish(runs.lrt_run(tmp_path, target=target))
    assert_complete(tmp_path, {"cal1": 4, "cal2": 1, "targ1": 20, "targ2": 2})
    assert ledger(tmp_path)["targ1_L229587_SB105"] == 2 and ledger(tmp_path)["targ1_L229587_SB104"] == 1


def test_a_missing_result_sends_its_token_back_to_todo(tmp_path, runs, workflow_couchdb):
    target = workflow_couchdb
    pipeline(tmp_path, target, calibrator=2, target_subbands=10, **ledger_commands(tmp_path))
    runs.snakemake(tmp_path, target=target)
    lost = tokens_of(target, tmp_path, "targ1")["targ1_L229587_SB107"]["Results_location"]
    Path(lost.removeprefix("file://")).unlink()
    run = runs.finish(runs.lrt_run(tmp_path, "--forcerun", "wait_targ1", target=target), check=False)
    assert run.returncode != 0
    assert "1 done tokens have no results where they say: targ1_L229587_SB107" in run.stdout
    assert tokens_of(target, tmp_path, "targ1")["targ1_L229587_SB107"]["status"] == "todo"
    # The same command again: the step's pilots run again, since the wait removed their reports.
    runs.finish(runs.lrt_run(tmp_path, "--forcerun", "wait_targ1", target=target))
    assert Path(lost.removeprefix("file://")).exists()
    assert ledger(tmp_path)["targ1_L229587_SB107"] == 2 and ledger(tmp_path)["targ1_L229587_SB106"] == 1


def second_target(folder: Path, obsid: str = "L229588", subbands: int = 10) -> str:
    """Another target observation: the bundled target's first subbands under another OBSID."""
    lines = (folder / "example" / "pipeline" / "target.txt").read_text().splitlines()[:subbands]
    path = folder / "example" / "pipeline" / "target2.txt"
    path.write_text("\n".join(line.replace("229587", obsid[1:]) for line in lines) + "\n")
    return "example/pipeline/target2.txt"


def test_a_calibrator_already_processed_is_reused_for_a_second_target(tmp_path, runs, workflow_couchdb):
    target = workflow_couchdb
    first = tmp_path / "first"
    first.mkdir()
    pipeline(first, target, calibrator=4, target_subbands=10, **ledger_commands(first))
    runs.snakemake(first, target=target)
    cal_jobs = {i for i in ledger(first) if i.startswith("cal")}
    assert len(cal_jobs) == 5

    # In the same folder: Snakemake finds the calibrator's steps complete and runs none of them.
    config = read_config(first)
    config["observations"]["target"] = second_target(first)
    save_config(first, config)
    run = runs.snakemake(first, target=target)
    assert "srmlist_cal1" not in run.stdout and "pilot_cal2" not in run.stdout
    assert {i for i in ledger(first) if i.startswith("cal")} == cal_jobs and ledger(first)["targ1_L229588_SB100"] == 1

    # In another folder, on the same database: its tokens are done, so no calibrator job runs again.
    second = tmp_path / "second"
    second.mkdir()
    couchdb = target.config if not target.embedded else {"embedded_data_dir": str(first / ".lrt" / "couchdb")}
    pipeline(second, None, calibrator=4, target_subbands=10, couchdb=couchdb, **ledger_commands(second))
    config = read_config(second)
    config["observations"]["target"] = second_target(second, "L229589")
    save_config(second, config)
    runs.snakemake(second, target=target)
    assert not [i for i in ledger(second) if i.startswith("cal")] and ledger(second)["targ1_L229589_SB100"] == 1
    solutions = read(step_dir(first, "cal2") / "results.json")["results"][0]["url"]
    # the database lives with the first folder (its embedded server) or on the session's server
    assert tokens_of(target, first, "targ1")["targ1_L229589_SB100"]["CAL_SOLUTIONS"] == solutions


@pytest.mark.parametrize("step", STEPS)
def test_killed_inside_a_step_the_rerun_completes_every_step_without_repeating_jobs(tmp_path, runs,
                                                                                    workflow_couchdb, step):
    target = workflow_couchdb
    # a short lease, so that the tokens the killed pilots held are reset soon after the rerun starts
    pipeline(tmp_path, target, calibrator=4, target_subbands=10, pilots={"lease_seconds": 4},
             **ledger_commands(tmp_path, before="sleep 2;"))

    def started_not_done() -> set[str]:
        # The ledger, not the token's status: a pilot saves "running" only once a job has run a second.
        docs = tokens_of(target, tmp_path, step)
        return {i for i in ledger(tmp_path) if i in docs and docs[i].get("status") != "done"}

    run = runs.lrt_run(tmp_path, target=target)
    wait_until(lambda: target.under_way(tmp_path) and started_not_done(), run, timeout=240)
    runs.kill(run)
    interrupted = started_not_done()
    assert interrupted
    runs.finish(runs.lrt_run(tmp_path, target=target))
    assert_complete(tmp_path, {"cal1": 4, "cal2": 1, "targ1": 10, "targ2": 1})
    runs_per_token = ledger(tmp_path)
    assert len(runs_per_token) == 16, "every token ran"
    assert {i for i, n in runs_per_token.items() if n > 1} <= interrupted, "only jobs killed mid-run ran again"


def test_two_observations_in_one_database_are_counted_apart(tmp_path, runs, workflow_couchdb):
    target = workflow_couchdb
    first, second = tmp_path / "first", tmp_path / "second"
    one_step(first, target, subbands=30)
    shared = target.config if not target.embedded else {"embedded_data_dir": str(first / ".lrt" / "couchdb")}
    one_step(second, None, subbands=51, couchdb=shared)
    srm = second / "example" / "srm.txt"
    srm.write_text(srm.read_text().replace("229507", "229508"))  # the same token type, another observation
    runs.snakemake(first, target=target)
    runs.snakemake(second, target=target)
    assert read(first / "results" / "L229507" / "status.json")["counts"]["total"] == 3
    assert read(second / "results" / "L229508" / "status.json")["counts"]["total"] == 6
    status = runs.lrt(first, "status", target=target)
    assert "demo (L229507): todo=0 locked=0 done=3 error=0 total=3" in status.stdout
