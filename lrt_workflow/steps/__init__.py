"""What each Snakemake rule runs: one function per step of an observation's lifecycle.

srm list -> chunks -> design -> tokens -> attachments -> pilots -> wait ->
archive -> report, in the modules named after the rule files:

* `srm`: a step's input (an srm list or an earlier step's results) and its chunks (``rules/srmlist.smk``);
* `tokens`: the design document, the tokens and their attachments (``rules/tokens.smk``);
* `pilots`: local pilots, the wait for every token, and the step's results (``rules/pilots.smk``);
* `archive`: the archive and the report (``rules/archive.smk``);
* `snakefile`: what the Snakefile itself needs; `run`: ``lrt run``.

Every step function takes the settings of one pipeline step
(`lrt_workflow.pipeline.step_settings`: the one-step shape of the
configuration). Each reads the files the previous one wrote, does its work,
and writes its own output last and atomically, so a step that fails or is
killed leaves no output that looks finished, and a rerun repeats it. The
database work in every step is idempotent, so repeating it creates nothing twice.
"""

from __future__ import annotations

from typing import Mapping

from lrt_workflow import pipeline
from lrt_workflow.config import check_files
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.couchdb.target import resolve
from lrt_workflow.pipeline import Pipeline
from lrt_workflow.srmlist import SubbandPattern, read_srm_file
from lrt_workflow.token import load_token_config


def load_pipeline(config: Mapping) -> Pipeline:
    """The pipeline of a validated configuration, once every file it names has been checked, every
    srm list read (which names each observation's OBSID) and every token template loaded."""
    check_files(config)
    names = pipeline.step_names(config)
    settings = {name: pipeline.step_settings(config, name) for name in names}
    obsids = {}
    for observation, srm_file in pipeline.srm_files(config).items():
        reader = next(name for name in names if settings[name]["srm_file"] == srm_file)
        obsids[observation] = read_srm_file(srm_file, pattern=subband_pattern(settings[reader])).obsid
    for name in names:
        load_token_config(settings[name]["token"]["template"])
    return pipeline.build(config, obsids)


def subband_pattern(settings: Mapping) -> SubbandPattern:
    """How a step's links write their subband numbers."""
    section = settings.get("subband_pattern") or {}
    return SubbandPattern(prefix=section.get("prefix", "SB"), suffix=section.get("suffix", "[_.]"))


def store_for(settings: Mapping, obsid: str | None = None) -> TokenStore:
    """The step's tokens in its database (created when missing); with ``obsid``, one observation's."""
    target = resolve(settings.get("couchdb"))
    return TokenStore(target.open(create=True), settings["token"]["type"],
                      batch_size=settings["couchdb"]["batch_size"], obsid=obsid)
