"""What each Snakemake rule runs: one function per step of an observation's lifecycle.

srm list -> chunks -> design -> tokens -> attachments -> pilots -> wait ->
archive -> report, in the modules named after the rule files:

* `srm`: the srm list and its chunks (``rules/srmlist.smk``);
* `tokens`: the design document, the tokens and their attachments (``rules/tokens.smk``);
* `pilots`: local pilots and the wait for every token (``rules/pilots.smk``);
* `archive`: the archive and the report (``rules/archive.smk``);
* `snakefile`: what the Snakefile itself needs; `run`: ``lrt run``.

Each step reads the files the previous one wrote, does its work, and writes
its own output last and atomically, so a step that fails or is killed leaves
no output that looks finished, and a rerun repeats it. The database work in
every step is idempotent, so repeating it creates nothing twice.
"""

from __future__ import annotations

from typing import Mapping

from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.couchdb.target import resolve


def store_for(config: Mapping) -> TokenStore:
    """The tokens of the configuration's type, in its database (created when missing)."""
    target = resolve(config.get("couchdb"))
    return TokenStore(target.open(create=True), config["token"]["type"], batch_size=config["couchdb"]["batch_size"])
