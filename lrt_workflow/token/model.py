"""The PiCaS token: one CouchDB document describing one job. Pure: no I/O here.

A token always carries the fields that both worker families read: the
original LOFAR launcher and our worker (``output``), and the ``picas``
client's ``RunActor`` (``scrub_count`` and ``exit_code``, read directly).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Mapping

from lrt_workflow import __version__
from lrt_workflow.token import modifiers
from lrt_workflow.token.modifiers import is_log_attachment  # noqa: F401 - imported from here by callers
from lrt_workflow.token.views import check_type

PROTECTED = ("_id", "_rev", "type")


def standard_fields(token_type: str, token_id: str) -> dict:
    """The fields every new token starts with."""
    return {
        "_id": token_id,
        "type": token_type,
        "lock": 0,
        "done": 0,
        "hostname": "",
        "scrub_count": 0,
        "status": "todo",
        "output": "",
        "exit_code": "",
        "times": {},
        "PICAS_API_VERSION": __version__,
    }


def token_id(token_type: str, obsid: str, first_subband: int | str) -> str:
    """The deterministic id ``<type>_<OBSID>_SB<nnn>``: a rerun finds the same token."""
    number = int(first_subband)
    return f"{token_type}_{obsid}_SB{number:03d}"


def reset_fields(doc: dict, *, now: float | None = None, drop_logs: bool = False) -> dict:
    """Put ``doc`` back in ``todo`` (a "scrub"), in place, and return it: `modifiers.reset`."""
    return modifiers.reset(doc, now, drop_logs=drop_logs)


def merge_fields(local: Mapping, remote: Mapping, *, prefer_local: bool) -> dict:
    """One document from two versions; the preferred side wins each field it has."""
    first, second = (remote, local) if prefer_local else (local, remote)
    merged = {**copy.deepcopy(dict(first)), **copy.deepcopy(dict(second))}
    if "_rev" in remote:  # the server's revision, so the merged token can be saved over it
        merged["_rev"] = remote["_rev"]
    return merged


class Token(dict):
    """A token as a dict: ``Token(token_type, token_id=None, **fields)``.

    Without an id, one is made from ``OBSID`` and ``STARTSB`` when the fields
    have them (the deterministic form), else it stays unset until ``build``.
    """

    def __init__(self, token_type: str, token_id: str | None = None, **fields):
        super().__init__()
        self._init_token(token_type, token_id, fields)

    def _init_token(self, token_type: str, token_id: str | None, fields: Mapping) -> None:
        check_type(token_type)
        self.update(standard_fields(token_type, token_id))
        self.update(fields)
        if token_id is None:
            self._default_id()

    def _default_id(self) -> None:
        if not self.get("_id") and self.get("OBSID") and str(self.get("STARTSB", "")).isdigit():
            self["_id"] = token_id(self["type"], self["OBSID"], self["STARTSB"])

    @property
    def token_type(self) -> str:
        return self["type"]

    def build(self, builder) -> "Token":
        """Add the fields of a token configuration (a `TokenBuilder`), keeping id and type."""
        for key, value in builder.data.items():
            if key not in PROTECTED:
                self[key] = value
        self._default_id()
        return self

    def reset(self, drop_logs: bool = False) -> "Token":
        modifiers.reset(self, drop_logs=drop_logs)
        return self

    def synchronize(self, db, prefer_local: bool = False, upload: bool = False) -> "Token":
        """Bring this token and its copy in ``db`` together.

        The server's fields win unless ``prefer_local``; with ``upload`` the
        merged token is saved back. A token that is not on the server yet is
        simply uploaded when asked to.
        """
        from lrt_workflow.token.store import fetch_document, save_document

        remote = fetch_document(db, self["_id"])
        merged = merge_fields(self, remote, prefer_local=prefer_local) if remote else dict(self)
        self.clear()
        self.update(merged)
        if upload:
            self["_rev"] = save_document(db, dict(self))
        return self

    def archive(self, folder: str | os.PathLike) -> Path:
        """Write the token as ``<folder>/<id>.json`` and return the path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self['_id']}.json"
        path.write_text(json.dumps(self, indent=2, sort_keys=True) + "\n")
        return path
