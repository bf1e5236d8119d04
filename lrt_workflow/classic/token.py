"""The classic tokens of the LOFAR GRID_LRT tools, working, on top of `TokenStore`: `Token`,
`caToken`, `TokenView`, `TokenReduceView` and `TokenList`.

Users have notebooks written against these names. Each class here is a thin
face on the bulk engine `lrt_workflow.couchdb.TokenStore`: a `TokenList` of a
thousand tokens is fetched, saved, reset or archived in a handful of
requests, not a thousand.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Iterable, Mapping

from lrt_workflow.archive import archive_tokens, attachment_filename
from lrt_workflow.couchdb.client import UpdateConflict
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.errors import LrtError
from lrt_workflow.token import model, views

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from cloudant.document import Document


class DuplicateToken(LrtError, RuntimeError):
    """A token with this id is in the list already."""


def _read_file(filename: str | os.PathLike) -> bytes:
    try:
        return Path(filename).read_bytes()
    except OSError as error:
        raise LrtError(f"cannot read attachment file {filename}: {error.strerror}") from None


#: Parsets, srm lists and logs are all text; the server need not guess.
TEXT = "text/plain"


def _merge(local: Mapping, remote: Mapping, *, prefer_local: bool) -> dict:
    """One document from two versions; the preferred side wins each field it has."""
    first, second = (remote, local) if prefer_local else (local, remote)
    merged = {**copy.deepcopy(dict(first)), **copy.deepcopy(dict(second))}
    if "_rev" in remote:  # the server's revision, so the merged token can be saved over it
        merged["_rev"] = remote["_rev"]
    return merged


class Token(model.Token):
    """The classic token: the pure `lrt_workflow.token.model.Token`, plus its two classic I/O methods."""

    def synchronize(self, db, prefer_local: bool = False, upload: bool = False) -> "Token":
        """Bring this token and its copy in ``db`` together.

        The server's fields win unless ``prefer_local``; with ``upload`` the
        merged token is saved back. A token that is not on the server yet is
        simply uploaded when asked to.
        """
        store = TokenStore(db, self["type"])
        remote = store.get(self["_id"])
        merged = _merge(self, remote, prefer_local=prefer_local) if remote else dict(self)
        self.clear()
        self.update(merged)
        if upload:
            self["_rev"] = store.save(dict(self))
        return self

    def archive(self, folder: str | os.PathLike) -> Path:
        """Write the token as ``<folder>/<id>.json`` and return the path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self['_id']}.json"
        path.write_text(json.dumps(self, indent=2, sort_keys=True) + "\n")
        return path


class caToken(Token, Document):
    """A `Token` that is also a cloudant `Document` in ``database``."""

    def __init__(self, database, token_type: str, token_id: str | None = None, **fields):
        Document.__init__(self, database, document_id=token_id)
        self._init_token(token_type, token_id, fields)

    @property
    def database(self):
        return self._database

    @property
    def _store(self) -> TokenStore:
        return TokenStore(self._database, self["type"])

    def save(self) -> None:
        self["_rev"] = self._store.save(dict(self))

    def fetch(self) -> "caToken":
        remote = self._store.get(self["_id"])
        if remote is None:
            raise LrtError(f"token {self['_id']} does not exist in database {self._database.database_name}")
        self.clear()
        self.update(remote)
        return self

    def delete(self) -> None:
        if "_rev" not in self:
            self.fetch()
        self._store.delete_token(self["_id"], self["_rev"])
        self.clear()

    def add_attachment(self, filename: str | os.PathLike, attachment_name: str) -> None:
        """Upload the file ``filename`` as ``attachment_name``."""
        self._store.put_attachment(self["_id"], attachment_name, _read_file(filename), TEXT)
        self.fetch()

    def get_all_attachments(self, folder: str | os.PathLike = ".") -> list[Path]:
        """Download every attachment into ``folder`` (a ``/`` in a name becomes ``_``)."""
        self.fetch()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        store = self._store
        paths = []
        for name in self.get("_attachments", {}):
            path = folder / attachment_filename(name)
            path.write_bytes(store.get_attachment(self["_id"], name))
            paths.append(path)
        return paths


class TokenView:
    """A map view of the tokens of one type for which a JavaScript condition holds."""

    def __init__(self, name: str, condition: str, emit_values: tuple[str, str] = ("doc._id", "doc._id")):
        self.name = name
        self.condition = condition
        self.emit_values = tuple(emit_values)

    def get_codes(self, token_type: str) -> tuple[str, str | None]:
        """(map code, reduce code or None)."""
        return views.condition_view(token_type, self.condition, self.emit_values)["map"], None


class TokenReduceView(TokenView):
    """The overview: counts of tokens per state, a true partition."""

    def __init__(self, name: str = views.OVERVIEW, **_ignored):
        super().__init__(name, condition="true")

    def get_codes(self, token_type: str) -> tuple[str, str]:
        view = views.overview_view(token_type)
        return view["map"], view["reduce"]


class TokenList(list):
    """A list of tokens of one type, with bulk operations against their database."""

    def __init__(self, token_type: str | None = None, database=None):
        super().__init__()
        self.token_type = views.check_type(token_type) if token_type else None
        self.database = database
        self._ids: set[str] = set()

    @property
    def store(self) -> TokenStore:
        if self.database is None or self.token_type is None:
            raise LrtError("this TokenList has no database or token type yet: pass them, or append a caToken first")
        return TokenStore(self.database, self.token_type)

    def append(self, item: Token) -> None:
        if not isinstance(item, Token):
            raise TypeError(f"cannot append {type(item).__name__}: a TokenList holds Tokens")
        if self.token_type is None:
            self.token_type = item["type"]
        elif item["type"] != self.token_type:
            raise TypeError(f"cannot append a token of type {item['type']!r} to a TokenList of {self.token_type!r}")
        if item["_id"] in self._ids:
            raise DuplicateToken(f"token with id {item['_id']} is in the list already; token ids must be unique")
        if self.database is None and isinstance(item, caToken):
            self.database = item.database
        self._ids.add(item["_id"])
        super().append(item)

    def extend(self, items: Iterable[Token]) -> None:
        for item in items:
            self.append(item)

    def ids(self) -> list[str]:
        return [token["_id"] for token in self]

    # views and the design document

    def add_view(self, view: TokenView) -> None:
        map_code, reduce_code = view.get_codes(self.token_type)
        self.store.add_view(view.name, {"map": map_code, **({"reduce": reduce_code} if reduce_code else {})})

    def add_token_views(self) -> None:
        """The standard views: todo, locked, done, error and overview_view."""
        self.store.ensure_design()

    def get_views(self) -> list[str]:
        return self.store.view_names()

    def delete_views(self) -> None:
        self.store.delete_views()

    def delete_ddoc(self) -> None:
        self.store.delete_design()

    def list_view_tokens(self, view_name: str) -> "TokenList":
        """A new TokenList of the tokens in a view, fetched in bulk.

        For a reduce view, which lists no tokens, the list itself is returned.
        """
        doc = self.store.design_doc() or {}
        view = doc.get("views", {}).get(view_name)
        if view is None:
            raise LrtError(f"view {view_name!r} does not exist in {self.store.design_id}; it has: "
                           f"{', '.join(sorted(doc.get('views', {}))) or 'no views'}")
        if "reduce" in view:
            return self
        result = TokenList(self.token_type, self.database)
        result._adopt(self.store.fetch(self.store.ids(view_name)))
        return result

    def _adopt(self, docs: Iterable[dict]) -> None:
        for doc in docs:
            token = caToken(self.database, doc.get("type", self.token_type), doc["_id"])
            token.clear()
            token.update(doc)
            self.append(token)

    def get_all_remote_tokens(self) -> None:
        """Append every token of this type on the server that the list lacks."""
        missing = [i for i in self.store.all_ids() if i not in self._ids]
        self._adopt(self.store.fetch(missing))

    # the tokens themselves

    def fetch(self) -> None:
        """Refresh every token from the server, in bulk."""
        remote = {doc["_id"]: doc for doc in self.store.fetch(self.ids())}
        for token in self:
            doc = remote.get(token["_id"])
            if doc is not None:
                token.clear()
                token.update(doc)

    def save(self) -> None:
        """Save every token in bulk: new ones are created, fetched ones updated.

        A token changed on the server since it was fetched is not overwritten:
        the conflict is reported, naming the tokens.
        """
        saved, conflicts = self.store.write([dict(token) for token in self])
        for token in self:
            if token["_id"] in saved:
                token["_rev"] = saved[token["_id"]]
        if conflicts:
            raise UpdateConflict(
                f"{len(conflicts)} tokens exist on the server in another version and were not saved "
                f"(fetch() them first): {', '.join(conflicts[:10])}"
            )

    upload_all = save

    def add_attachment(self, filename: str | os.PathLike, attachment_name: str) -> None:
        self.store.attach(attachment_name, _read_file(filename), self.ids(), TEXT)
        self.fetch()

    def reset(self, drop_logs: bool = False) -> None:
        """Put every token in the list back in ``todo`` on the server."""
        self.store.reset(self.ids(), drop_logs=drop_logs)
        self.fetch()

    def delete(self) -> None:
        """Delete every token in the list from the server and empty the list."""
        self.store.delete(self.ids())
        self.clear()
        self._ids.clear()

    delete_all = delete

    def archive(self, folder: str | os.PathLike = ".", compress: bool = False, delete: bool = False) -> Path:
        """Write the tokens and their attachments under ``folder/<type>/``, or into
        ``folder/<type>.tar.gz`` with ``compress``. Only ``delete`` touches the server:
        it removes the tokens and the design document once they are safely written."""
        path = archive_tokens(self.store, Path(folder), ids=self.ids(), compress=compress)
        if delete:
            self.delete()
            self.delete_ddoc()
        return path


__all__ = ["Token", "caToken", "TokenView", "TokenReduceView", "TokenList", "DuplicateToken"]
