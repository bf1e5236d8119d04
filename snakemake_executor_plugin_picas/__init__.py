"""``snakemake --executor picas``: every job Snakemake runs becomes a PiCaS token, run by ``lrt worker`` pilots.

Snakemake finds this plugin by its module name; it ships with lrt_workflow.

* `settings`: the ``--picas-*`` options (`ExecutorSettings`), and where the server and credentials come from;
* `jobs`: a job as a token (pure: ids, fields, what the status rows mean);
* `executor`: the `Executor` Snakemake drives: submit, check, cancel.

Pilots serve these tokens as they serve LOFAR ones: ``lrt worker --type snakemake --idle-seconds 600``,
on this machine, in SLURM jobs or on the grid, with the same claim, lease, heartbeat, time limit and
log upload. Jobs run in the workflow's folder, which pilots must see at the same path: a shared file
system, as the SLURM executor assumes.
"""

from snakemake_interface_executor_plugins.settings import CommonSettings

from snakemake_executor_plugin_picas.executor import Executor
from snakemake_executor_plugin_picas.settings import ExecutorSettings

common_settings = CommonSettings(
    non_local_exec=True,
    # Pilots see the workflow's folder, its sources and its software at the same paths (see README).
    implies_no_shared_fs=False,
    job_deploy_sources=False,
    # Variables named by --envvars or a Snakefile's envvars: are how Snakemake passes secrets; they must
    # not be written into the command, which a token holds for every reader of the database to see.
    pass_envvar_declarations_to_cmd=False,
    auto_deploy_default_storage_provider=False,
    pass_group_args=True,
    init_seconds_before_status_checks=1,
)

__all__ = ["Executor", "ExecutorSettings", "common_settings"]
