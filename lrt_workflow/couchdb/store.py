"""All CouchDB traffic for the tokens of one type: the engine behind the classic API.

This is the only code that speaks HTTP to a database (through the request
functions of `lrt_workflow.couchdb.documents`); everything else asks a
`TokenStore`. Every operation on many tokens is a bulk operation: ids are
read with one view or ``_all_docs`` request, documents are written with
``_bulk_docs`` in batches, and attachments travel inline (base64) inside the
documents. That is what makes ten thousand tokens a matter of seconds, and
it sidesteps the embedded pouchdb-server's ``If-Match`` quirk: it ignores
that header, so a revision must go in the query string or the body.

Read-modify-write operations (reset, attach, set status) retry the documents
whose write met a conflict, re-reading them first, so a worker's concurrent
update is never overwritten with stale data.
"""

from __future__ import annotations

import collections
import json
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from lrt_workflow import __version__
from lrt_workflow.couchdb import documents
from lrt_workflow.couchdb.client import (
    CouchDBError,
    Forbidden,
    UpdateConflict,
)
from lrt_workflow.couchdb.credentials import redact_url
from lrt_workflow.couchdb.documents import batched, design_ids  # noqa: F401  (imported from here too)
from lrt_workflow.token import modifiers, views
from lrt_workflow.token.model import check_new_tokens, checked_new_tokens, inline_attachment

BATCH_SIZE = documents.BATCH_SIZE
MAX_CONFLICT_ROUNDS = 8
#: Bulk writes of a creation kept in flight at once: the next batch is built and encoded while
#: the server stores the one before.
IN_FLIGHT = 2


class DesignNotCurrent(CouchDBError):
    """``_design/<type>`` must be written, and this user may not."""


@dataclass
class CreateReport:
    """What a bulk create did, by token id."""

    created: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return self.created + self.found + self.overwritten

    def __str__(self) -> str:
        text = f"created {len(self.created)} tokens, found {len(self.found)} already there"
        return text + (f", overwrote {len(self.overwritten)}" if self.overwritten else "")


class TokenStore:
    """The tokens of one type in one database, and the design document that indexes them.

    With ``obsid``, the views are read for that observation only: its counts,
    its ids and the tokens a worker claims. Writes address tokens by id either way.
    """

    def __init__(self, db, token_type: str, *, design: str | None = None, batch_size: int = BATCH_SIZE,
                 obsid: str | None = None):
        self.db = db
        self.token_type = views.check_type(token_type)
        self.design = design or token_type
        self.batch_size = batch_size
        self.obsid = obsid

    @property
    def design_id(self) -> str:
        return f"_design/{self.design}"

    def __repr__(self) -> str:
        scope = f", obsid={self.obsid!r}" if self.obsid else ""
        return f"TokenStore({self.db.database_name!r}, {self.token_type!r}{scope})"

    # --- the design document -------------------------------------------------

    def design_update(self) -> tuple[dict | None, dict | None]:
        """(``_design/<type>`` as stored, what it should become, or None when it is current).

        Views a user added by hand are kept. Only the views decide: a document
        whose views are current is not rewritten for a newer tools' version,
        because every rewrite makes the server rebuild its indexes (and only
        database admins may write it).
        """
        wanted = views.design_document(self.token_type, __version__)
        wanted["_id"] = self.design_id
        current = self.design_doc()
        if current:
            kept = {name: view for name, view in current.get("views", {}).items() if name not in views.RETIRED_VIEWS}
            merged = {**current, **wanted, "views": {**kept, **wanted["views"]}}
            if (merged["views"], merged["language"]) == (current.get("views"), current.get("language")):
                return current, None
            wanted = merged
        return current, wanted

    def ensure_design(self) -> bool:
        """Create or update ``_design/<type>`` with the standard views; True if it was written."""
        current, wanted = self.design_update()
        if wanted is None:
            return False
        try:
            documents.save_document(self.db, wanted)
        except UpdateConflict:
            # Another run wrote it between our read and our write: check theirs.
            return self.ensure_design()
        except Forbidden:
            raise DesignNotCurrent(
                f"{self.design_id} in database {self.db.database_name} is "
                f"{'out of date' if current else 'missing'}, and this user may not write design documents (a "
                "member of the database, not one of its admins). Ask a database admin to run, in this project "
                f"folder, 'lrt design install' (or anywhere: 'lrt design install --type {self.token_type} --url "
                f"{redact_url(self.db.client.server_url)} --database {self.db.database_name}'); then run again"
            ) from None
        return True

    def add_view(self, name: str, view: dict) -> None:
        doc = self.design_doc() or {"_id": self.design_id, "language": "javascript", "views": {}}
        doc.setdefault("views", {})[name] = view
        documents.save_document(self.db, doc)

    def delete_views(self, names: Iterable[str] | None = None) -> None:
        """Remove the named views (all of them without names), keeping the design document."""
        doc = self.design_doc()
        if not doc:
            return
        doc["views"] = {} if names is None else {k: v for k, v in doc.get("views", {}).items() if k not in set(names)}
        documents.save_document(self.db, doc)

    def delete_design(self) -> bool:
        doc = self.design_doc()
        if not doc:
            return False
        documents.delete_document(self.db, self.design_id, doc["_rev"])
        return True

    def design_doc(self) -> dict | None:
        """``_design/<type>`` as stored, or None."""
        return documents.fetch_document(self.db, self.design_id)

    def view_names(self) -> list[str]:
        return sorted((self.design_doc() or {}).get("views", {}))

    # --- reading -------------------------------------------------------------

    def view_rows(self, view: str, **params) -> list[dict]:
        """The rows of one view of this design document, in one request."""
        query = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in params.items()}
        response = documents.request(self.db, "GET", f"{documents.quote_id(self.design_id)}/_view/{urllib.parse.quote(view)}", params=query)
        return response.json()["rows"]

    def _scope(self) -> dict:
        """The key range of this store's observation in the views keyed [OBSID, ...]."""
        return {"startkey": [self.obsid], "endkey": [self.obsid, {}]} if self.obsid else {}

    def ids(self, view: str = "todo", *, limit: int | None = None) -> list[str]:
        """The ids of a view's tokens (of this observation, with ``obsid``)."""
        params = {"limit": limit} if limit else {}
        return [row["id"] for row in self.view_rows(view, **self._scope(), **params)]

    def ids_by_state(self, state: str | None = None) -> dict[str, list[str]]:
        """{state: ids} of this store's tokens (of its observation, with ``obsid``), or of ``state``'s only."""
        return {name: list(rows) for name, rows in self.listing(state).items()}

    def listing(self, state: str | None = None) -> dict[str, dict[str, list | None]]:
        """{state: {id: value}}, as `ids_by_state`, from the view `counts` reads and so keeps built
        (pouchdb-server builds each view on its first query). A done token's value is
        [Results_location, STARTSB, has an upload block]; the others' None."""
        listing = {name: {} for name in views.STATES}
        view, scope = (views.BY_OBSERVATION, self._scope()) if self.obsid else (views.OVERVIEW, {})
        if state:
            scope = {"key": json.dumps([self.obsid, state] if self.obsid else state)}  # view_rows sends str as is
        for row in self.view_rows(view, reduce=False, **scope):
            listing[row["key"][1] if self.obsid else row["key"]][row["id"]] = row.get("value")
        return listing

    def counts(self) -> dict[str, int]:
        """``{todo, locked, done, error, total}`` from one reduce request."""
        counts = dict.fromkeys(views.STATES, 0)
        if self.obsid:
            rows = self.view_rows(views.BY_OBSERVATION, group=True, **self._scope())
            counts.update({row["key"][1]: row["value"] for row in rows})
        else:
            counts.update({row["key"]: row["value"] for row in self.view_rows(views.OVERVIEW, group=True)})
        counts["total"] = sum(counts[state] for state in views.STATES)
        return counts

    def all_ids(self) -> list[str]:
        """Every token of this type (of this observation, with ``obsid``), whatever its state."""
        view = views.BY_OBSERVATION if self.obsid else views.OVERVIEW
        return [row["id"] for row in self.view_rows(view, reduce=False, **self._scope())]

    # --- following changes ---------------------------------------------------

    def update_seq(self):
        """The database's update sequence now: a `follow` from here misses no later change."""
        return documents.update_seq(self.db)

    def selector(self, **more) -> dict:
        """A Mango selector of this store's tokens (of its observation, with ``obsid``) and ``more``."""
        return {"type": self.token_type, **({"OBSID": self.obsid} if self.obsid else {}), **more}

    def follow(self, since, seconds: float, *, match: Mapping | None = None, enough: int = 1,
               stop: Callable[[], bool] | None = None) -> tuple[int, object]:
        """Wait, in one request, until ``enough`` of this store's tokens that match ``match`` (a Mango
        selector, e.g. `views.FINISHED`) changed after ``since``, or ``seconds`` passed, or ``stop()``.
        Returns (how many changes came, the sequence to follow on from)."""
        return documents.follow_changes(self.db, self.selector(**(match or {})), since, seconds, enough=enough, stop=stop)

    # --- reading documents ---------------------------------------------------

    def fetch(self, ids: Sequence[str], *, attachments: bool = False) -> list[dict]:
        return documents.fetch_documents(self.db, ids, attachments=attachments, batch_size=self.batch_size)

    def revisions(self, ids: Sequence[str]) -> dict[str, str]:
        """{id: current revision} of those of ``ids`` that exist, in a few ``_all_docs`` requests."""
        return documents.existing_revisions(self.db, ids)

    def get(self, token_id: str) -> dict | None:
        return documents.fetch_document(self.db, token_id)

    def save(self, doc: dict) -> str:
        """Save one token with the revision it carries; returns the new revision.
        Raises `UpdateConflict` when the token changed on the server since that revision."""
        return documents.save_document(self.db, doc)

    def write(self, docs: Sequence[dict]) -> tuple[dict[str, str], list[str]]:
        """Save documents in bulk as they are, each with the revision it carries:
        ({id: new revision} of those saved, [ids that conflicted])."""
        saved, conflicts = {}, []
        for batch in documents.batched(list(docs), self.batch_size):
            batch_saved, batch_conflicts = documents.bulk_write(self.db, batch)
            saved.update(batch_saved)
            conflicts.extend(batch_conflicts)
        return saved, conflicts

    def delete_token(self, token_id: str, rev: str) -> None:
        """Delete one token at revision ``rev`` (`UpdateConflict` if it changed)."""
        documents.delete_document(self.db, token_id, rev)

    # --- writing -------------------------------------------------------------

    def create(
        self,
        tokens: Iterable[Mapping],
        attachments: Mapping[str, Mapping[str, bytes]] | None = None,
        *,
        overwrite: bool = False,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> CreateReport:
        """Create tokens in bulk, leaving the ones that exist untouched.

        ``attachments`` maps a token id to ``{name: bytes}``, sent inline with
        the token (a token may also carry its ``_attachments`` inline itself). An
        existing token keeps its progress and locks unless ``overwrite``, which
        replaces it with the new document. A token created by a concurrent run
        between our check and our write counts as found.

        A list of tokens is checked whole (unique ids, this store's type) before
        anything is written. Any other iterable is read as it is written, so
        building the tokens overlaps the server storing them; each is checked as
        it comes, and a bad one stops the creation there (what was written stays,
        and a rerun finds it).
        """
        if overwrite or isinstance(tokens, (list, tuple)):
            tokens = check_new_tokens(self.token_type, list(tokens))
        else:
            tokens = checked_new_tokens(self.token_type, tokens)
        # Without overwrite there is nothing to ask first: the server refuses a
        # token that exists with a conflict, which is counted as found. That
        # saves a round of _all_docs requests on every creation.
        existing = self.revisions([t["_id"] for t in tokens]) if overwrite else {}
        total = len(tokens) if isinstance(tokens, list) else None
        report = CreateReport()

        def encoded(batch: Sequence[Mapping]) -> bytes:
            docs = []
            for token in batch:
                doc = {key: value for key, value in token.items() if key != "_rev"}
                if doc["_id"] in existing:
                    doc["_rev"] = existing[doc["_id"]]
                files = (attachments or {}).get(doc["_id"])
                if files:
                    doc["_attachments"] = {name: inline_attachment(data) for name, data in files.items()}
                docs.append(doc)
            return documents.bulk_body(docs)

        def record(batch: Sequence[Mapping], saved: Mapping[str, str], conflicts: list[str]) -> None:
            for token in batch:
                if token["_id"] in saved:
                    (report.overwritten if token["_id"] in existing else report.created).append(token["_id"])
            report.found.extend(conflicts)
            if progress:
                progress(len(report.ids), total)

        # IN_FLIGHT bulk writes at once: while the server stores one batch, the next is
        # built, base64-encoded and JSON-encoded here. Memory holds a few batches, not all.
        with ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="lrt-create") as pool:
            in_flight: collections.deque = collections.deque()
            for batch in documents.lazy_batches(tokens, self.batch_size):
                in_flight.append((batch, pool.submit(documents.bulk_send, self.db, encoded(batch))))
                if len(in_flight) >= IN_FLIGHT:
                    done, future = in_flight.popleft()
                    record(done, *future.result())
            while in_flight:
                done, future = in_flight.popleft()
                record(done, *future.result())
        return report

    def modify(self, ids: Sequence[str], change: Callable[[dict], bool | None], *, attachments: bool = False) -> list[str]:
        """Apply ``change`` to each token and save them in bulk; returns the ids saved.

        ``change`` edits a document in place and may return False to leave it
        alone. Documents whose save conflicts are re-read and changed again, so
        a concurrent writer's update is kept, never overwritten.
        """
        changed: list[str] = []
        pending = list(ids)
        for _ in range(MAX_CONFLICT_ROUNDS):
            if not pending:
                return changed
            docs = [doc for doc in self.fetch(pending, attachments=attachments) if change(doc) is not False]
            saved, pending = self.write(docs)
            changed.extend(saved)
        raise UpdateConflict(f"{len(pending)} tokens kept changing while being updated: {', '.join(pending[:10])}")

    def attach(self, name: str, data: bytes, ids: Sequence[str] | None = None, content_type: str = "text/plain",
               *, unfinished_only: bool = False) -> list[str]:
        """Attach the same file to many tokens in bulk (all tokens of the type by default).

        A token that already holds identical content is left alone, so
        attaching again on a rerun writes nothing; with ``unfinished_only``,
        so is a token that is done.
        """
        ids = self.all_ids() if ids is None else list(ids)
        encoded = inline_attachment(data, content_type)
        # The stub digests known to stand for exactly these bytes, and those known not to.
        # pouchdb-server reports the MD5 of the bytes as stored: ours. Apache CouchDB 3
        # stores text/* (and other compressible types) gzip-compressed and reports the MD5
        # of the compressed bytes, which we cannot recompute: they depend on the server's
        # zlib and its compression_level. But equal compressed bytes mean equal content,
        # so one download per distinct digest settles it for every token that has it: on
        # a rerun, one download for all tokens instead of a rewrite of every one of them.
        same, different = {documents.md5_digest(data)}, set()

        def unchanged(doc: dict, stub: dict | None) -> bool:
            digest = (stub or {}).get("digest")
            if digest in same:
                return True
            # ``length`` is the size of the content, compressed or not, on both servers.
            if digest is None or digest in different or stub.get("length") != len(data):
                return False
            stored = self.get_attachment(doc["_id"], name, rev=doc["_rev"])
            (same if stored == data else different).add(digest)
            return digest in same

        def add(doc: dict) -> bool:
            if unfinished_only and modifiers.state(doc) == "done":
                return False
            if unchanged(doc, doc.setdefault("_attachments", {}).get(name)):
                return False
            doc["_attachments"][name] = dict(encoded)
            return True

        return self.modify(ids, add)

    def put_attachment(self, token_id: str, name: str, data: bytes, content_type: str = "text/plain") -> str:
        """Attach one file to one token; returns the token's new revision."""
        for _ in range(MAX_CONFLICT_ROUNDS):
            doc = documents.fetch_document(self.db, token_id)
            if doc is None:
                raise CouchDBError(f"token {token_id} does not exist in {self.db.database_name}")
            # The revision goes in the query string: the embedded server ignores If-Match.
            response = documents.request(
                self.db, "PUT", f"{documents.quote_id(token_id)}/{urllib.parse.quote(name, safe='')}",
                params={"rev": doc["_rev"]}, data=data, headers={"Content-Type": content_type}, expect=(409,),
            )
            if response.status_code != 409:
                return response.json()["rev"]
        raise UpdateConflict(f"token {token_id} kept changing while attaching {name}")

    def get_attachment(self, token_id: str, name: str, *, rev: str | None = None) -> bytes:
        """The attachment's content (of revision ``rev``, else the current one), uncompressed."""
        path = f"{documents.quote_id(token_id)}/{urllib.parse.quote(name, safe='')}"
        return documents.request(self.db, "GET", path, params={"rev": rev} if rev else None).content

    def set_fields(self, ids: Sequence[str], **fields) -> list[str]:
        def update(doc: dict) -> None:
            doc.update(fields)

        return self.modify(ids, update)

    def reset(self, ids: Sequence[str], *, drop_logs: bool = False, max_scrub: int | None = None) -> list[str]:
        """Put tokens back in ``todo``; those already reset ``max_scrub`` times are left as they are."""
        now = time.time()

        return self.modify(ids, lambda doc: modifiers.retry_or_keep(doc, max_scrub, now, drop_logs=drop_logs))

    def reset_view(self, view: str, *, drop_logs: bool = False, max_scrub: int | None = None) -> list[str]:
        return self.reset(self.ids(view), drop_logs=drop_logs, max_scrub=max_scrub)

    def stale_ids(self, lease_seconds: float, now: float | None = None) -> list[str]:
        """Locked tokens whose holder has not been heard of for longer than the lease (it died)."""
        cutoff = (now if now is not None else time.time()) - lease_seconds
        return [row["value"] for row in self.view_rows(views.LAST_SEEN, endkey=cutoff)]

    def reset_stale(self, lease_seconds: float, now: float | None = None, *, max_scrub: int | None = None,
                    drop_logs: bool = True) -> list[str]:
        """Reset the stale tokens (see `stale_ids`); those already reset ``max_scrub`` times go to
        ``error`` with a reason instead. Returns the ids changed either way."""
        now = now if now is not None else time.time()
        cutoff = now - lease_seconds

        def expire_if_still_stale(doc: dict) -> bool:
            # Re-checked on the document itself: since the view was read the
            # worker may have sent a heartbeat or finished, and then it is not stale.
            if not modifiers.is_stale(doc, cutoff):
                return False
            modifiers.expire(doc, lease_seconds, max_scrub, now, drop_logs=drop_logs)
            return True

        return self.modify(self.stale_ids(lease_seconds, now), expire_if_still_stale)

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete tokens in bulk; returns the ids deleted."""
        def mark(doc: dict) -> None:
            for key in list(doc):
                if key not in ("_id", "_rev"):
                    del doc[key]
            doc["_deleted"] = True

        return self.modify(ids, mark)

    def purge(self) -> list[str]:
        """Delete every token of this type (the design document stays)."""
        return self.delete(self.all_ids())
