"""Steps 3-5: the design document, one token per chunk, and the attachments every token gets."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Iterable, Mapping

from lrt_workflow import __version__
from lrt_workflow.files import read_json, write_json
from lrt_workflow.steps import store_for
from lrt_workflow.token import load_token_config
from lrt_workflow.token.model import new_token, token_id

log = logging.getLogger("lrt_workflow")


def build_tokens(config: Mapping, template: Mapping, obsid: str, chunk_names: Iterable[str]) -> list[dict]:
    """The token of each chunk: standard fields, then the template, then ``token.fields``, then
    what only the chunk knows (OBSID, STARTSB) and ``token.command``. Ids are deterministic."""
    section = config["token"]
    command = {"command": section["command"]} if section.get("command") else {}
    return [new_token(section["type"], token_id(section["type"], obsid, name), template, section.get("fields") or {},
                      {"OBSID": obsid, "STARTSB": name}, command)
            for name in chunk_names]


def job_command(config: Mapping) -> str | None:
    """``token.command`` of config.yaml, else ``Job.command`` of the template."""
    token = config.get("token") or {}
    if token.get("command"):
        return token["command"]
    return load_token_config(token["template"]).job.get("command") if token.get("template") else None


def design_step(config: Mapping, out: str | os.PathLike) -> dict:
    store = store_for(config)
    written = store.ensure_design()
    info = {"design": store.design_id, "database": store.db.database_name, "version": __version__,
            "views": store.view_names(), "written": written}
    write_json(out, info)
    return info


def tokens_step(config: Mapping, chunks_index: str | os.PathLike, out: str | os.PathLike,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """One token per chunk, with the chunk's ``srm.txt`` inline; existing tokens are kept as they are."""
    index = read_json(chunks_index)
    folder = Path(chunks_index).parent
    builder = load_token_config(config["token"]["template"])
    store = store_for(config)
    store.ensure_design()
    tokens = build_tokens(config, builder.data, index["obsid"], [chunk["name"] for chunk in index["chunks"]])
    files = {token["_id"]: {"srm.txt": (folder / chunk["file"]).read_bytes()}
             for token, chunk in zip(tokens, index["chunks"])}
    report = store.create(tokens, files, progress=progress)
    log.info("%s", report)
    result = {"type": store.token_type, "database": store.db.database_name, "ids": [t["_id"] for t in tokens],
              "created": len(report.created), "found": len(report.found)}
    write_json(out, result)
    return result


def attachments_step(config: Mapping, tokens_file: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Every file of ``token.attachments`` on every token, in bulk; unchanged ones are not rewritten."""
    ids = read_json(tokens_file)["ids"]
    store = store_for(config)
    written = {}
    for name in config["token"].get("attachments") or []:
        data = Path(name).read_bytes()
        written[os.path.basename(name)] = len(store.attach(os.path.basename(name), data, ids))
    result = {"attachments": written, "tokens": len(ids)}
    write_json(out, result)
    return result


