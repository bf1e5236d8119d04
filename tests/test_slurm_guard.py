"""The SLURM guard's decisions (lrt_workflow/steps/slurm.py), cycle by cycle, against a stand-in for the
executor plugin that behaves as snakemake-executor-plugin-slurm 2.8 does: it forgets the jobs of a
cycle whose status query failed, keeps asking about jobs the answer leaves out, and lets its pause
grow by 10 s per check. These tests claim nothing about SLURM itself: tests/test_slurm.py runs the
same guard against a real cluster.
"""

from __future__ import annotations

import asyncio
import types
from types import SimpleNamespace

import pytest

from lrt_workflow.steps import slurm


def stand_in(answers: list):
    """A plugin module whose status query returns ``answers`` in turn: {job id: state}, or None for
    a failed query (the plugin then logs why at debug level only)."""
    module = types.ModuleType("stand_in_plugin")

    async def query_job_status(command, logger):
        states = answers.pop(0)
        if states is None:
            logger.debug("SLURM query command failed: slurm_load_jobs error: Unable to contact slurm controller")
            return None, None
        return states, 0.01

    class Executor:
        def __init__(self):
            self.workflow = SimpleNamespace(remote_execution_settings=SimpleNamespace(seconds_between_status_checks=10))
            self.next_seconds_between_status_checks = 5
            self.wait = True
            self.errors, self.successes = [], []
            self.logger = SimpleNamespace(debug=lambda *a, **k: None)

        async def check_active_jobs(self, active_jobs):
            states, _ = await module.query_job_status("squeue --name run", self.logger)
            if states is None:
                return  # as the plugin does after its attempts: nothing yielded, nothing reported
            for job in active_jobs:
                if job.external_jobid not in states:
                    yield job
                elif states[job.external_jobid] == "COMPLETED":
                    self.successes.append(job.external_jobid)
                else:
                    yield job
            self.next_seconds_between_status_checks = min(self.next_seconds_between_status_checks + 10, 180)

        def report_job_error(self, job, msg=None, aux_logs=None):
            self.errors.append((job.external_jobid, msg, aux_logs))

        def cancel_jobs(self, active_jobs):
            pass

    module.query_job_status = query_job_status
    module.Executor = Executor
    return module


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def job(job_id: str):
    return SimpleNamespace(external_jobid=job_id, aux={"slurm_logfile": f".snakemake/slurm_logs/{job_id}.log"})


def guarded(answers: list, limit: float = 120):
    module, clock, cancelled = stand_in(answers), Clock(), []
    slurm.install(module, limit, clock=clock, scancel=lambda job_id: cancelled.append(job_id))
    return module.Executor(), clock, cancelled


def check(executor, jobs) -> list[str]:
    async def run():
        return [j.external_jobid async for j in executor.check_active_jobs(jobs)]
    return asyncio.run(run())


def test_jobs_of_a_failed_query_are_kept_and_judged_when_it_answers_again():
    executor, clock, cancelled = guarded([None, None, {"7": "COMPLETED", "8": "RUNNING"}])
    jobs = [job("7"), job("8")]
    assert check(executor, jobs) == ["7", "8"]
    clock.now += 60
    assert check(executor, jobs) == ["7", "8"]
    clock.now += 10
    assert check(executor, jobs) == ["8"]
    assert executor.successes == ["7"] and executor.errors == [] and cancelled == []


def test_a_job_unknown_past_the_limit_is_cancelled_and_reported_with_the_reason_and_its_log():
    executor, clock, cancelled = guarded([None, None, {}, {}], limit=120)
    jobs = [job("7")]
    assert check(executor, jobs) == ["7"]
    clock.now += 119
    assert check(executor, jobs) == ["7"], "within the limit"
    clock.now += 1
    assert check(executor, jobs) == []
    assert cancelled == ["7"]
    (job_id, message, logs), = executor.errors
    assert job_id == "7" and logs == [".snakemake/slurm_logs/7.log"]
    assert message.startswith("SLURM job 7: its state could not be learned (`squeue` no longer lists it for 120 s")


def test_the_reason_of_a_failed_query_is_named():
    executor, clock, cancelled = guarded([None, None], limit=30)
    check(executor, [job("7")])
    clock.now += 30
    check(executor, [job("7")])
    assert "`squeue` failed: slurm_load_jobs error: Unable to contact slurm controller" in executor.errors[0][1]


def test_a_job_seen_again_starts_its_limit_afresh():
    executor, clock, cancelled = guarded([{}, {"7": "RUNNING"}, {}, {}], limit=30)
    jobs = [job("7")]
    for step in (0, 25, 1, 25):
        clock.now += step
        assert check(executor, jobs) == ["7"]
    assert executor.errors == [] and cancelled == []


def test_the_pause_between_checks_never_exceeds_seconds_between_status_checks():
    executor, clock, cancelled = guarded([{"7": "RUNNING"}] * 5)
    for _ in range(5):
        check(executor, [job("7")])
        assert executor.next_seconds_between_status_checks <= 10


def test_the_pause_ends_as_soon_as_the_executor_shuts_down():
    executor, clock, cancelled = guarded([])
    executor.next_seconds_between_status_checks = 3600

    async def run():
        asyncio.get_running_loop().call_later(0.2, setattr, executor, "wait", False)
        await asyncio.wait_for(executor.sleep(), timeout=5)
    asyncio.run(run())


def test_installing_twice_wraps_once():
    module = stand_in([{}])
    slurm.install(module, 10, scancel=lambda job_id: None)
    wrapped = module.Executor.check_active_jobs
    slurm.install(module, 20, scancel=lambda job_id: None)
    assert module.Executor.check_active_jobs is wrapped and module.Executor._lrt_guard_limit == 20


@pytest.mark.parametrize("text, expected", [("", 120.0), ("15", 15.0), ("0.5", 0.5)])
def test_the_limit_comes_from_the_environment(text, expected):
    assert slurm.unknown_seconds({slurm.UNKNOWN_SECONDS_VARIABLE: text}) == expected


@pytest.mark.parametrize("text", ["0", "-3", "soon"])
def test_a_wrong_limit_stops_the_run(text):
    with pytest.raises(SystemExit, match=slurm.UNKNOWN_SECONDS_VARIABLE):
        slurm.unknown_seconds({slurm.UNKNOWN_SECONDS_VARIABLE: text})
