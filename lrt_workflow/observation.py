"""One observation, from its parsed srm list to its chunks and token documents. Pure: no I/O.

The workflow's steps call these with what they read from disk and write
what these return, so the rules of chunking and of token building are
tested without a server or Snakemake.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from lrt_workflow.srmlist import SubbandPattern, chunk, missing_ranges
from lrt_workflow.token.model import standard_fields, token_id


def pattern(config: Mapping) -> SubbandPattern:
    section = config.get("subband_pattern") or {}
    return SubbandPattern(prefix=section.get("prefix", "SB"), suffix=section.get("suffix", "[_.]"))


def summary(parsed, config: Mapping) -> dict:
    """What ``lrt srm check`` prints, as the srmlist step's ``summary.json``."""
    subbands = sorted(link.subband for link in parsed.links)
    return {
        "srm_file": str(config["srm_file"]),
        "obsid": parsed.obsid,
        "site": parsed.site,
        "files": len(parsed.links),
        "subbands": {"first": subbands[0], "last": subbands[-1]} if subbands else None,
        # As ranges: a list of SB0 and SB999999 must not spell out a million gaps.
        "missing_subbands": [list(r) for r in missing_ranges(parsed.links)],
        "duplicates_dropped": parsed.duplicates_dropped,
        "chunk_size": config["chunk_size"],
    }


def chunk_plan(links: Sequence, size: int) -> list[dict]:
    """The chunks as plain data: name, first slot and the URLs, in order."""
    return [{"name": c.name, "start": c.start, "links": [link.url for link in c.links]} for c in chunk(links, size)]


def build_token(config: Mapping, template: Mapping, obsid: str, chunk_name: str) -> dict:
    """The token of one chunk: standard fields, then the template, then ``token.fields``,
    then what only this chunk knows (OBSID, STARTSB). The id is deterministic."""
    token_type = config["token"]["type"]
    doc = standard_fields(token_type, token_id(token_type, obsid, chunk_name))
    for key, value in template.items():
        if key not in ("_id", "type"):
            doc[key] = value
    doc.update(config["token"].get("fields") or {})
    doc.update(OBSID=obsid, STARTSB=chunk_name)
    command = config["token"].get("command")
    if command:
        doc["command"] = command
    return doc
