# An observation's lifecycle on PiCaS, as one reproducible DAG:
#   srm list -> chunks -> design -> tokens -> attachments -> pilots -> wait -> archive -> report
# Every rule is one call into the lrt_workflow package; the logic lives there.
# Run:   snakemake --profile profiles/local            (again after any failure: it resumes)

import shlex
import sys

from snakemake.utils import min_version

from lrt_workflow.steps import snakefile as support

min_version("9.18")


configfile: "config.yaml"


# The schema in the package (lrt_workflow/schema/config.schema.json), with every
# problem listed by key; defaults are filled in.
support.validate(config)

OBSID = support.peek_obsid(config["srm_file"])
OUT = f"{config['results_dir']}/{OBSID}"
TYPE = config["token"]["type"]
LOCAL_PILOTS = config["pilots"]["launcher"] == "local"
# The steps read the exact configuration Snakemake validated, overlays included:
# written when the run starts (onstart), so -n and --lint write nothing.
CONFIG_FILE = f"{OUT}/config.json"
CONFIG = shlex.quote(CONFIG_FILE)
# Under conda each rule has its own environment (envs/lrt_workflow.yaml);
# otherwise the rules run with the Python that runs Snakemake.
if "conda" in {str(m).lower() for m in workflow.deployment_settings.deployment_method}:
    LRT = "python -m lrt_workflow"
else:
    LRT = f"{shlex.quote(sys.executable)} -m lrt_workflow"
ENV = "../envs/lrt_workflow.yaml"


include: "rules/common.smk"
include: "rules/srmlist.smk"
include: "rules/tokens.smk"
include: "rules/pilots.smk"
include: "rules/archive.smk"


# Only pilots are worth a batch job; every other step is a few seconds of HTTP.
localrules:
    all,
    srmlist,
    chunks,
    design,
    tokens,
    attachments,
    wait,
    archive,
    report,


rule all:
    default_target: True
    input:
        f"{OUT}/report.html",
        f"{OUT}/tokens_{TYPE}.tar.gz",


onstart:
    support.write_config_snapshot(config, CONFIG_FILE)
    support.start_embedded(config)


onsuccess:
    support.stop_embedded(config)
    support.print_summary(OUT, TYPE)


onerror:
    support.stop_embedded(config)
