"""The pilot: a worker that claims tokens from CouchDB and runs their jobs on this machine.

* `worker`: the loop, the job's status and result, stopping (`Worker`);
* `holdings`: the tokens a worker holds: claiming them in rounds, saving, leases, giving them back;
* `job`: the job's process, environment and logs.
"""

from lrt_workflow.pilot.job import TIMEOUT_EXIT, job_environment
from lrt_workflow.pilot.worker import LeaseLost, Worker, WorkerReport

__all__ = ["Worker", "WorkerReport", "LeaseLost", "TIMEOUT_EXIT", "job_environment"]
