"""The classic token API of the LOFAR GRID_LRT tools, working, on top of `TokenStore`.

Users have notebooks written against these names. Each class here is a thin
face on the bulk engine in `store`: a `TokenList` of a thousand tokens is
fetched, saved, reset or archived in a handful of requests, not a thousand.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterable, Mapping

from lrt_workflow.couchdb import UpdateConflict, connect, open_database
from lrt_workflow.credentials import PicasCredentials, load_credentials
from lrt_workflow.errors import LrtError
from lrt_workflow.token import views
from lrt_workflow.token.archive import archive_tokens, attachment_filename
from lrt_workflow.token.builders import TokenBuilder, TokenDictBuilder, load_token_config
from lrt_workflow.token.model import Token, standard_fields, token_id
from lrt_workflow.token.store import TokenStore, bulk_write, delete_document, fetch_document, request, save_document

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from cloudant.database import CouchDatabase
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


class caToken(Token, Document):
    """A `Token` that is also a cloudant `Document` in ``database``."""

    def __init__(self, database, token_type: str, token_id: str | None = None, **fields):
        Document.__init__(self, database, document_id=token_id)
        self._init_token(token_type, token_id, fields)

    @property
    def database(self):
        return self._database

    def save(self) -> None:
        self["_rev"] = save_document(self._database, dict(self))

    def fetch(self) -> "caToken":
        remote = fetch_document(self._database, self["_id"])
        if remote is None:
            raise LrtError(f"token {self['_id']} does not exist in database {self._database.database_name}")
        self.clear()
        self.update(remote)
        return self

    def delete(self) -> None:
        if "_rev" not in self:
            self.fetch()
        delete_document(self._database, self["_id"], self["_rev"])
        self.clear()

    def add_attachment(self, filename: str | os.PathLike, attachment_name: str) -> None:
        """Upload the file ``filename`` as ``attachment_name`` (the revision goes in the query string,
        which the embedded server needs)."""
        store = TokenStore(self._database, self["type"])
        store.put_attachment(self["_id"], attachment_name, _read_file(filename), TEXT)
        self.fetch()

    def get_all_attachments(self, folder: str | os.PathLike = ".") -> list[Path]:
        """Download every attachment into ``folder`` (a ``/`` in a name becomes ``_``)."""
        self.fetch()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        store = TokenStore(self._database, self["type"])
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
        doc = fetch_document(self.database, self.store.design_id) or {}
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
        saved, conflicts = {}, []
        docs = [dict(token) for token in self]
        for start in range(0, len(docs), self.store.batch_size):
            batch_saved, batch_conflicts = bulk_write(self.database, docs[start:start + self.store.batch_size])
            saved.update(batch_saved)
            conflicts.extend(batch_conflicts)
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


def _database(srv=None, uname=None, pwd=None, dbn=None, database=None):
    """A database object from either an existing one or connection details."""
    if isinstance(srv, CouchDatabase):
        return srv
    if database is not None:
        return database
    creds = load_credentials(user=uname or None, password=pwd or None, database=dbn or None, url=srv)
    if not creds.database:
        raise LrtError("no database name given: pass dbn=, or set PICAS_DATABASE or database= in ~/.picasrc")
    return open_database(connect(creds), creds.database)


class TokenHandler:
    """The manager of one ``_design/<type>``: its views and the tokens they show.

    ``TokenHandler(t_type, srv, uname, pwd, dbn)`` connects; ``TokenHandler(t_type,
    database)`` or ``TokenHandler(t_type, database=db)`` uses an open database.
    """

    def __init__(self, t_type: str = "token", srv=None, uname=None, pwd=None, dbn=None, *, database=None):
        self.t_type = views.check_type(t_type)
        self.db = _database(srv, uname, pwd, dbn, database)
        self.store = TokenStore(self.db, self.t_type)
        self.views: dict = {}

    def add_status_views(self) -> None:
        self.store.ensure_design()
        self.load_views()

    add_overview_view = add_status_views

    def load_views(self) -> dict:
        doc = fetch_document(self.db, self.store.design_id) or {}
        self.views = doc.get("views", {})
        return self.views

    def add_view(self, view_name: str, cond: str, emit_value: str = "doc._id", emit_value2: str = "doc._id") -> None:
        self.store.add_view(view_name, views.condition_view(self.t_type, cond, (emit_value, emit_value2)))
        self.load_views()

    def list_tokens_from_view(self, view_name: str) -> list[dict]:
        """The view's rows: ``{"id", "key", "value"}`` each."""
        if view_name not in self.load_views():
            raise LrtError(f"view {view_name!r} does not exist in {self.store.design_id}; it has: "
                           f"{', '.join(sorted(self.views)) or 'no views'}")
        return self.store.view_rows(view_name)

    def _ids(self, view_name: str, key=None) -> list[str]:
        ids = [row["id"] for row in self.list_tokens_from_view(view_name)]
        if not key or not key[0]:
            return ids
        field, value = key
        return [doc["_id"] for doc in self.store.fetch(ids) if doc.get(field) == value]

    def reset_tokens(self, view_name: str, key=None, del_attach: bool = False) -> list[str]:
        """Reset the tokens of a view (those whose ``key[0]`` field equals ``key[1]``, if given).

        ``del_attach`` drops the logs a worker attached, never the job's inputs.
        """
        return self.store.reset(self._ids(view_name, key), drop_logs=del_attach)

    def set_view_to_status(self, view_name: str, status: str) -> list[str]:
        """Set ``status`` on every token of a view; ``"todo"`` resets them properly."""
        ids = self._ids(view_name)
        if status == "todo":
            return self.store.reset(ids)
        return self.store.set_fields(ids, status=str(status))

    def delete_tokens(self, view_name: str, key=None) -> list[str]:
        return self.store.delete(self._ids(view_name, key))

    def add_attachment(self, token: str, filehandle, filename: str = "attachment") -> str:
        """Attach a file (an open file or a path) to one token."""
        data = filehandle.read() if hasattr(filehandle, "read") else _read_file(filehandle)
        if isinstance(data, str):
            data = data.encode()
        return self.store.put_attachment(token, filename, data, TEXT)

    def list_attachments(self, token: str) -> list[str]:
        doc = self.store.get(token)
        if doc is None:
            raise LrtError(f"token {token} does not exist")
        return sorted(doc.get("_attachments", {}))

    def get_attachment(self, token: str, filename: str, savename: str | os.PathLike | None = None) -> Path:
        """Download one attachment; returns the absolute path written."""
        path = Path(savename or attachment_filename(filename))
        path.write_bytes(self.store.get_attachment(token, filename))
        return path.resolve()

    def archive_tokens(self, delete_on_save: bool = False, compress: bool = True, folder: str | os.PathLike = ".") -> Path:
        path = archive_tokens(self.store, Path(folder), compress=compress)
        if delete_on_save:
            self.store.purge()
        return path

    def purge_tokens(self) -> None:
        """Delete every token of this type and the design document."""
        self.store.purge()
        self.store.delete_design()
        self.views = {}

    # beyond the classic API

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    def reset_stale(self, lease_seconds: float) -> list[str]:
        return self.store.reset_stale(lease_seconds)


class TokenSet:
    """A set of tokens made from one token configuration and a mapping of chunks.

    ``th`` is the `TokenHandler` of the type; ``tok_config`` a token
    configuration: a JSON or YAML path, a dict, or a `TokenBuilder`.
    """

    def __init__(self, th: TokenHandler | None = None, tok_config=None):
        if th is None:
            raise LrtError("a TokenSet needs a TokenHandler (th=...) for its token type and database")
        self.th = th
        if tok_config is None:
            self.builder: TokenBuilder = TokenDictBuilder({})
        elif isinstance(tok_config, TokenBuilder):
            self.builder = tok_config
        elif isinstance(tok_config, Mapping):
            self.builder = TokenDictBuilder(tok_config)
        else:
            self.builder = load_token_config(tok_config)
        self._tokens: list[str] = []
        self.last_report = None

    def create_dict_tokens(
        self,
        iterable: Mapping | None = None,
        id_prefix: str = "SB",
        id_append: str = "L000000",
        key_name: str = "STARTSB",
        file_upload: str | None = None,
        *,
        overwrite: bool = False,
    ):
        """One token per key of ``iterable`` (e.g. ``{"100": srmlist}`` from `slice_dicts`).

        Each token gets ``key_name`` = the key, zero-padded to 3 digits, and
        the id ``<type>_<id_append>_<id_prefix><key>``, which with the defaults
        and ``id_append`` = OBSID is the deterministic ``<type>_<OBSID>_SB<nnn>``.
        With ``file_upload``, the value's lines are attached under that name.
        Existing tokens are left untouched; returns the `CreateReport`.
        """
        iterable = iterable or {}
        template = self.builder.data
        tokens, attachments = [], {}
        for key, value in iterable.items():
            start = f"{int(key):03d}" if str(key).isdigit() else str(key)
            if id_prefix == "SB" and str(key).isdigit():
                tid = token_id(self.th.t_type, id_append, key)
            else:
                tid = f"{self.th.t_type}_{id_append}_{id_prefix}{start}"
            token = {**standard_fields(self.th.t_type, tid), **template, key_name: start}
            token["_id"], token["type"] = tid, self.th.t_type
            tokens.append(token)
            if file_upload:
                lines = value if not isinstance(value, (str, bytes)) else [value]
                attachments[tid] = {file_upload: "".join(f"{str(line).strip()}\n" for line in lines).encode()}
        self.th.store.ensure_design()
        report = self.th.store.create(tokens, attachments, overwrite=overwrite)
        self._tokens = list(dict.fromkeys(self._tokens + [t["_id"] for t in tokens]))
        self.last_report = report
        return report

    def add_attach_to_list(self, attachment: str | os.PathLike, tok_list=None, name: str | None = None) -> list[str]:
        """Attach one file to every token of the set (or of ``tok_list``), in bulk."""
        name = name or os.path.basename(attachment)
        ids = list(tok_list) if tok_list else self._tokens
        return self.th.store.attach(name, _read_file(attachment), ids, TEXT)

    def add_keys_to_list(self, key: str, val, tok_list=None) -> list[str]:
        """Set one field on every token of the set (or of ``tok_list``), in bulk."""
        ids = list(tok_list) if tok_list else self._tokens
        return self.th.store.set_fields(ids, **{key: val})

    @property
    def tokens(self) -> list[str]:
        self.update_local_tokens()
        return self._tokens

    def update_local_tokens(self) -> None:
        """Reload the ids of every token of the type from the server."""
        self._tokens = self.th.store.all_ids()


def _handler(token_type: str, pcreds: PicasCredentials | None, srv, database) -> TokenHandler:
    pcreds = pcreds or PicasCredentials()
    return TokenHandler(token_type, srv or pcreds.url, pcreds.user, pcreds.password, pcreds.database, database=database)


def get_all_design_docs(pcreds: PicasCredentials | None = None, srv=None, *, database=None) -> list[str]:
    """The ids of every design document in the database."""
    pcreds = pcreds or PicasCredentials()
    db = _database(srv or pcreds.url, pcreds.user, pcreds.password, pcreds.database, database)
    rows = request(db, "GET", "_all_docs", params={"startkey": '"_design/"', "endkey": '"_design0"'}).json()["rows"]
    return [row["id"] for row in rows]


def reset_all_tokens(token_type: str, pcreds: PicasCredentials | None = None, srv=None, *, database=None) -> list[str]:
    """Put every token of ``token_type`` back in ``todo``."""
    store = _handler(token_type, pcreds, srv, database).store
    return store.reset(store.all_ids())


def purge_tokens(token_type: str, pcreds: PicasCredentials | None = None, srv=None, *, database=None) -> None:
    """Delete every token of ``token_type`` and its design document."""
    _handler(token_type, pcreds, srv, database).purge_tokens()


__all__ = [
    "Token", "caToken", "TokenView", "TokenReduceView", "TokenList", "TokenSet", "TokenHandler",
    "get_all_design_docs", "reset_all_tokens", "purge_tokens",
]
