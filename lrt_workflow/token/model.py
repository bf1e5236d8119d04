"""The PiCaS token: one CouchDB document describing one job. Pure: no I/O here.

A token always carries the fields that both worker families read: the
original LOFAR launcher and our worker (``output``), and the ``picas``
client's ``RunActor`` (``scrub_count`` and ``exit_code``, read directly).
Every token document is made by `new_token`; its state changes are in
`lrt_workflow.token.modifiers`.
"""

from __future__ import annotations

import base64
import collections
from typing import Iterable, Iterator, Mapping

from lrt_workflow import __version__
from lrt_workflow.errors import LrtError
from lrt_workflow.token import modifiers
from lrt_workflow.token.views import check_type

#: Fields a template or a configuration may not set: they are the token's identity.
PROTECTED = ("_id", "_rev", "type")


def standard_fields(token_type: str, token_id: str | None) -> dict:
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


def new_token(token_type: str, token_id: str | None, *layers: Mapping) -> dict:
    """A new token document: the standard fields, then each layer of fields in order
    (a template's, the configuration's, the chunk's), later layers winning. No layer
    can change the id or the type."""
    check_type(token_type)
    doc = standard_fields(token_type, token_id)
    for layer in layers:
        doc.update((key, value) for key, value in layer.items() if key not in PROTECTED)
    return doc


def check_new_tokens(token_type: str, tokens: list[Mapping]) -> list[Mapping]:
    """``tokens``, once every id is known to be unique and every type to be ``token_type``."""
    duplicates = sorted(i for i, n in collections.Counter(t["_id"] for t in tokens).items() if n > 1)
    if duplicates:
        raise LrtError(f"token ids must be unique; repeated: {', '.join(duplicates[:10])}")
    for token in tokens:
        _check_token_type(token_type, token)
    return tokens


def checked_new_tokens(token_type: str, tokens: Iterable[Mapping]) -> Iterator[Mapping]:
    """The tokens of `check_new_tokens`, checked one by one as they are read."""
    seen = set()
    for token in tokens:
        if token["_id"] in seen:
            raise LrtError(f"token ids must be unique; repeated: {token['_id']}")
        seen.add(token["_id"])
        yield _check_token_type(token_type, token)


def _check_token_type(token_type: str, token: Mapping) -> Mapping:
    if token.get("type") != token_type:
        raise LrtError(f"token {token['_id']} has type {token.get('type')!r}, not {token_type!r}")
    return token


def inline_attachment(data: bytes, content_type: str = "text/plain") -> dict:
    """An attachment carried inside the document (base64), saved together with it."""
    return {"content_type": content_type, "data": base64.b64encode(data).decode("ascii")}


class Token(dict):
    """A token as a dict: ``Token(token_type, token_id=None, **fields)``.

    Without an id, one is made from ``OBSID`` and ``STARTSB`` when the fields
    have them (the deterministic form), else it stays unset until ``build``.
    """

    def __init__(self, token_type: str, token_id: str | None = None, **fields):
        super().__init__()
        self._init_token(token_type, token_id, fields)

    def _init_token(self, token_type: str, token_id: str | None, fields: Mapping) -> None:
        self.update(new_token(token_type, token_id))
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
        self.update(new_token(self["type"], self["_id"], self, builder.data))
        self._default_id()
        return self

    def reset(self, drop_logs: bool = False) -> "Token":
        modifiers.reset(self, drop_logs=drop_logs)
        return self
