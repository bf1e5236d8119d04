"""Steps 3-5: the design document, one token per chunk, and the attachments every token gets.

A rerun after the step's template, command, fields or attachments changed
gives the new spec to every token that is not done and not running; done
tokens keep theirs (``lrt reset --view done`` first to redo them).
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Iterable, Mapping

from lrt_workflow import __version__
from lrt_workflow.files import read_json, write_json
from lrt_workflow.steps import store_for
from lrt_workflow.token import load_token_config, modifiers
from lrt_workflow.token.model import new_token, token_id

log = logging.getLogger("lrt_workflow")


def build_tokens(settings: Mapping, template: Mapping, obsid: str, chunk_names: Iterable[str],
                 fields: Mapping | None = None) -> list[dict]:
    """The token of each chunk: standard fields, then the template, then ``token.fields`` and the fields
    taken from earlier steps, then what only the chunk knows (OBSID, STARTSB), the step and
    ``token.command``. Ids are deterministic; each token notes the digest of its spec."""
    section = settings["token"]
    fields = dict(fields or {})
    if fields:  # a field taken from an earlier step is for the job: export it like the template's own keys
        template = copy.deepcopy(dict(template))
        keys = template.setdefault("config.json", {}).setdefault("variables", {}).setdefault("_token_keys", {})
        for name in fields:
            keys.setdefault(f"${name}", name)
    command = {"command": section["command"]} if section.get("command") else {}
    step = {"lrt_step": settings["step"]} if settings.get("step") else {}
    return [modifiers.with_spec_digest(new_token(
                section["type"], token_id(section["type"], obsid, name), template, section.get("fields") or {},
                fields, {"OBSID": obsid, "STARTSB": name}, step, command))
            for name in chunk_names]


def job_command(settings: Mapping) -> str | None:
    """``token.command`` of the configuration, else ``Job.command`` of the template."""
    token = settings.get("token") or {}
    if token.get("command"):
        return token["command"]
    return load_token_config(token["template"]).job.get("command") if token.get("template") else None


def results_field(results_file: str | os.PathLike) -> str | list[str]:
    """An earlier step's results as one token field: its one location, or the list of them."""
    urls = [item["url"] for item in read_json(results_file)["results"]]
    return urls[0] if len(urls) == 1 else urls


def design_step(settings: Mapping, out: str | os.PathLike) -> dict:
    store = store_for(settings)
    written = store.ensure_design()
    info = {"design": store.design_id, "database": store.db.database_name, "version": __version__,
            "views": store.view_names(), "written": written}
    write_json(out, info)
    return info


def tokens_step(settings: Mapping, chunks_index: str | os.PathLike, out: str | os.PathLike,
                fields_from: Mapping[str, str] | None = None) -> dict:
    """One token per chunk, with the chunk's ``srm.txt`` inline. Existing tokens keep their progress;
    those that are not done and not running take a changed spec.

    ``fields_from`` maps a field to the ``results.json`` of the earlier step whose results fill it.
    """
    index = read_json(chunks_index)
    folder = Path(chunks_index).parent
    builder = load_token_config(settings["token"]["template"])
    fields = {name: results_field(path) for name, path in (fields_from or {}).items()}
    store = store_for(settings, index["obsid"])
    store.ensure_design()
    tokens = build_tokens(settings, builder.data, index["obsid"], [chunk["name"] for chunk in index["chunks"]], fields)
    files = {token["_id"]: {"srm.txt": (folder / chunk["file"]).read_bytes()}
             for token, chunk in zip(tokens, index["chunks"])}
    report = store.create(tokens, files)
    updated = update_specs(store, {token["_id"]: token for token in tokens if token["_id"] in set(report.found)})
    log.info("%s%s", report, f"; gave {len(updated)} a changed spec" if updated else "")
    result = {"type": store.token_type, "database": store.db.database_name, "obsid": index["obsid"],
              "step": settings.get("step"), "ids": [t["_id"] for t in tokens],
              "created": len(report.created), "found": len(report.found), "updated": len(updated)}
    write_json(out, result)
    return result


def update_specs(store, wanted: Mapping[str, Mapping]) -> list[str]:
    """Give each token of ``wanted`` that is neither done nor running, and whose spec differs, the new one."""
    def changeable(doc: Mapping) -> bool:
        return (modifiers.state(doc) in ("todo", "error")
                and doc.get(modifiers.SPEC) != wanted[doc["_id"]][modifiers.SPEC])

    stale = [doc["_id"] for doc in store.fetch(list(wanted)) if changeable(doc)]
    return store.modify(stale, lambda doc: changeable(doc) and bool(modifiers.respec(doc, wanted[doc["_id"]])))


def attachments_step(settings: Mapping, tokens_file: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Every file of ``token.attachments`` on every token, in bulk; unchanged ones are not rewritten,
    and done tokens keep the files they ran with."""
    ids = read_json(tokens_file)["ids"]
    store = store_for(settings)
    written = {}
    for name in settings["token"].get("attachments") or []:
        data = Path(name).read_bytes()
        written[os.path.basename(name)] = len(store.attach(os.path.basename(name), data, ids, unfinished_only=True))
    result = {"attachments": written, "tokens": len(ids)}
    write_json(out, result)
    return result
