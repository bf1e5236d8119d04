"""The classic manager of one token type, `TokenHandler`, the bulk `TokenSet`, and the module
functions of the LOFAR GRID_LRT tools, working, on top of `TokenStore`."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Mapping

from lrt_workflow.archive import archive_tokens, attachment_filename
from lrt_workflow.classic.token import TEXT, _read_file
from lrt_workflow.couchdb.client import connect, open_database
from lrt_workflow.couchdb.credentials import PicasCredentials, load_credentials
from lrt_workflow.couchdb.documents import design_ids
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.errors import LrtError
from lrt_workflow.token import views
from lrt_workflow.token.builders import TokenBuilder, TokenDictBuilder, load_token_config
from lrt_workflow.token.model import new_token, token_id

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from cloudant.database import CouchDatabase


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
        self.views = (self.store.design_doc() or {}).get("views", {})
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
            tokens.append(new_token(self.th.t_type, tid, template, {key_name: start}))
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
    return design_ids(db)


def reset_all_tokens(token_type: str, pcreds: PicasCredentials | None = None, srv=None, *, database=None) -> list[str]:
    """Put every token of ``token_type`` back in ``todo``."""
    store = _handler(token_type, pcreds, srv, database).store
    return store.reset(store.all_ids())


def purge_tokens(token_type: str, pcreds: PicasCredentials | None = None, srv=None, *, database=None) -> None:
    """Delete every token of ``token_type`` and its design document."""
    _handler(token_type, pcreds, srv, database).purge_tokens()


__all__ = ["TokenHandler", "TokenSet", "get_all_design_docs", "reset_all_tokens", "purge_tokens"]
