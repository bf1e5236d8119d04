"""Steps 1-2: a step's input, validated and normalised, then cut into chunks.

A step reads its observation's srm list, or the results of an earlier step
(their locations, in subband order). Either way the srmlist step writes
``inputs.json`` (the OBSID, and each input's subband and URL), which the
chunks step cuts into one file per chunk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from lrt_workflow.config import check_files
from lrt_workflow.errors import LrtError
from lrt_workflow.files import read_json, write_atomic, write_json
from lrt_workflow.pipeline import SRM
from lrt_workflow.srmlist import plan_chunks, read_srm_file, summarise
from lrt_workflow.steps import subband_pattern
from lrt_workflow.token import load_token_config


def srmlist_step(settings: Mapping, source, inputs_out, srm_out, summary_out) -> dict:
    """Validate every input before anything touches CouchDB; write the inputs, as a list and as data.

    ``source`` is the step's srm list, or, for a step that reads an earlier one's results, that
    step's ``results.json``.
    """
    check_files(settings)
    load_token_config(settings["token"]["template"])  # refuses a bad or too-old template now, not later
    if settings.get("input", SRM) != SRM:
        earlier = read_json(source)
        items = [{"subband": item["subband"], "url": item["url"]} for item in earlier["results"]]
        if not items:
            raise LrtError(f"{source}: step {earlier.get('step')} left no results for this step to read")
        obsid = earlier["obsid"]
        summary = {"input": str(source), "obsid": obsid, "files": len(items)}
    else:
        parsed = read_srm_file(source, pattern=subband_pattern(settings))
        items = [{"subband": link.subband, "url": link.url} for link in parsed.links]
        obsid = parsed.obsid
        summary = summarise(parsed)
    summary["chunk_size"] = settings["chunk_size"] or "all"
    write_atomic(srm_out, "".join(f"{item['url']}\n" for item in items))
    write_json(summary_out, summary)
    write_json(inputs_out, {"obsid": obsid, "step": settings["step"], "items": items})
    return summary


def chunks_step(settings: Mapping, inputs_file: str | os.PathLike, out_dir: str | os.PathLike) -> list[dict]:
    """One file per chunk in ``out_dir``, and ``index.json`` listing them in order (written last)."""
    inputs = read_json(inputs_file)
    plan = plan_chunks(((item["subband"], item["url"]) for item in inputs["items"]), settings["chunk_size"])
    out_dir = Path(out_dir)
    for chunk in plan:
        write_atomic(out_dir / f"{chunk['name']}.txt", "".join(f"{url}\n" for url in chunk["links"]))
    index = [{"name": c["name"], "start": c["start"], "file": f"{c['name']}.txt", "count": len(c["links"])}
             for c in plan]
    write_json(out_dir / "index.json", {"obsid": inputs["obsid"], "chunks": index})
    return index
