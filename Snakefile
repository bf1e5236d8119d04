# An observation's lifecycle on PiCaS, as one reproducible DAG, for each step of its pipeline:
#   srm list -> chunks -> design -> tokens -> attachments -> pilots -> wait -> archive, then one report.
# A pipeline chains steps (calibrator, then target): a step reads its observation's srm list or the
# results of an earlier step. Every rule is one call into the lrt_workflow package; the logic lives there.
# Run:   lrt run        (again after any failure: it resumes)

from snakemake.utils import min_version

from lrt_workflow.steps import slurm
from lrt_workflow.steps import snakefile as support

min_version("9.18")


configfile: "config.yaml"


# The configuration (lrt_workflow/schema/config.schema.json, defaults filled in) and every input it
# names, checked before any job runs: each problem listed, with file and line where there is one.
CONDA = "conda" in {str(m).lower() for m in workflow.deployment_settings.deployment_method}
PIPELINE = support.load(config, workflow.configfiles, conda=CONDA)
STEPS = PIPELINE.steps
support.warn_if_unreachable(config, workflow)
# Under conda each rule has its own environment; otherwise the rules use the Python that runs Snakemake.
ENV = "../envs/lrt_workflow.yaml"


include: "rules/srmlist.smk"
include: "rules/tokens.smk"
include: "rules/pilots.smk"
include: "rules/archive.smk"


rule all:
    default_target: True
    localrule: True
    input:
        [support.archive_file(step) for step in STEPS],
        f"{PIPELINE.home}/report.html",


onstart:
    # Written when a run starts, so that -n and --lint write nothing.
    support.write_config_snapshot(config, support.snapshot_path(PIPELINE))
    # With the SLURM executor: a job whose state cannot be learned fails the run; SIGTERM stops it like Ctrl-C.
    slurm.activate(workflow)
    support.start_embedded(config)


onsuccess:
    support.stop_embedded(config)
    support.print_summary(PIPELINE)


onerror:
    support.stop_embedded(config)
