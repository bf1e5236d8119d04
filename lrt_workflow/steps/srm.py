"""Steps 1-2: the srm list, validated and normalised, then cut into chunk files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from lrt_workflow.config import check_files
from lrt_workflow.files import write_atomic, write_json
from lrt_workflow.srmlist import SubbandPattern, chunk_plan, read_srm_file, summarise
from lrt_workflow.token import load_token_config


def subband_pattern(config: Mapping) -> SubbandPattern:
    """How the configuration's links write their subband numbers."""
    section = config.get("subband_pattern") or {}
    return SubbandPattern(prefix=section.get("prefix", "SB"), suffix=section.get("suffix", "[_.]"))


def srmlist_step(config: Mapping, srm_out: str | os.PathLike, summary_out: str | os.PathLike) -> dict:
    """Validate every input before anything touches CouchDB; write the normalised list and its summary."""
    check_files(config)
    load_token_config(config["token"]["template"])  # refuses a bad or too-old template now, not later
    parsed = read_srm_file(config["srm_file"], pattern=subband_pattern(config))
    summary = {**summarise(parsed), "chunk_size": config["chunk_size"]}
    write_atomic(srm_out, "".join(f"{link.url}\n" for link in parsed.links))
    write_json(summary_out, summary)
    return summary


def chunks_step(config: Mapping, srm_file: str | os.PathLike, out_dir: str | os.PathLike) -> list[dict]:
    """One file per chunk in ``out_dir``, and ``index.json`` listing them in order (written last)."""
    parsed = read_srm_file(srm_file, pattern=subband_pattern(config))
    plan = chunk_plan(parsed.links, config["chunk_size"])
    out_dir = Path(out_dir)
    for chunk in plan:
        write_atomic(out_dir / f"{chunk['name']}.txt", "".join(f"{url}\n" for url in chunk["links"]))
    index = [{"name": c["name"], "start": c["start"], "file": f"{c['name']}.txt", "count": len(c["links"])}
             for c in plan]
    write_json(out_dir / "index.json", {"obsid": parsed.obsid, "chunks": index})
    return index


