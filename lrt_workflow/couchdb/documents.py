"""Requests for the documents of one database: one at a time and in bulk. The HTTP that
`TokenStore` is built on; apart from it, only the listing of design documents is used elsewhere.

Failures become the typed errors of `lrt_workflow.couchdb.client`, naming the
server without its password.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from typing import Iterator, Sequence

from lrt_workflow.couchdb.client import AuthenticationFailed, CouchDBError, UpdateConflict, http_error, translate_errors

BATCH_SIZE = 500


def batched(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def quote_id(doc_id: str) -> str:
    # Design documents keep their slash; every other id is one path segment.
    if doc_id.startswith("_design/"):
        return "_design/" + urllib.parse.quote(doc_id[len("_design/"):], safe="")
    return urllib.parse.quote(doc_id, safe="")


def request(db, method: str, path: str = "", *, expect: Sequence[int] = (), **kwargs):
    """One HTTP request to ``db``; returns the response. Failures become typed errors,
    except the status codes in ``expect``, which the caller handles."""
    url = db.database_url + (f"/{path}" if path else "")
    with translate_errors(db.client.server_url, db.database_name):
        response = db.r_session.request(method, url, **kwargs)
        if response.status_code >= 400 and response.status_code not in expect:
            raise http_error(response, f"{db.client.server_url.rstrip('/')}/{db.database_name}/{path}".rstrip("/"))
    return response


def fetch_document(db, doc_id: str, *, attachments: bool = False) -> dict | None:
    """The document ``doc_id``, or None when there is none."""
    params = {"attachments": "true"} if attachments else None
    response = request(db, "GET", quote_id(doc_id), params=params, expect=(404,))
    return None if response.status_code == 404 else response.json()


def save_document(db, doc: dict) -> str:
    """Create or update one document (``_rev`` decides which); returns its new revision."""
    response = request(db, "PUT", quote_id(doc["_id"]), json=doc, expect=(409,))
    if response.status_code == 409:
        raise UpdateConflict(f"token {doc['_id']} changed on the server since it was read; fetch it and try again")
    return response.json()["rev"]


def delete_document(db, doc_id: str, rev: str) -> None:
    response = request(db, "DELETE", quote_id(doc_id), params={"rev": rev}, expect=(409,))
    if response.status_code == 409:
        raise UpdateConflict(f"token {doc_id} changed on the server since it was read; fetch it and try again")


def bulk_write(db, docs: Sequence[dict]) -> tuple[dict[str, str], list[str]]:
    """``_bulk_docs``: returns ({id: new rev} of the saved, [ids that conflicted])."""
    saved, conflicts = {}, []
    if not docs:
        return saved, conflicts
    for row in request(db, "POST", "_bulk_docs", json={"docs": list(docs)}).json():
        if "rev" in row and "error" not in row:
            saved[row["id"]] = row["rev"]
        elif row.get("error") == "conflict":
            conflicts.append(row["id"])
        elif row.get("error") in ("unauthorized", "forbidden"):
            raise AuthenticationFailed(
                f"CouchDB refused to save token {row.get('id')} in {db.database_name} ({row['error']}: "
                f"{row.get('reason')}); check the user and password and the user's rights on the database"
            )
        else:
            raise CouchDBError(f"could not save token {row.get('id')}: {row.get('error')}: {row.get('reason')}")
    return saved, conflicts


def fetch_documents(db, ids: Sequence[str], *, attachments: bool = False, batch_size: int = BATCH_SIZE) -> list[dict]:
    """The documents with these ids that exist, in the order given."""
    docs = []
    params = {"include_docs": "true"}
    if attachments:
        params["attachments"] = "true"
    for batch in batched(list(ids), batch_size):
        rows = request(db, "POST", "_all_docs", params=params, json={"keys": list(batch)}).json()["rows"]
        docs.extend(row["doc"] for row in rows if row.get("doc"))
    return docs


def existing_revisions(db, ids: Sequence[str], batch_size: int = 2000) -> dict[str, str]:
    """{id: current rev} for the ids that exist and are not deleted. One request per batch."""
    revisions = {}
    for batch in batched(list(ids), batch_size):
        for row in request(db, "POST", "_all_docs", json={"keys": list(batch)}).json()["rows"]:
            value = row.get("value")
            if value and not value.get("deleted"):
                revisions[row["id"]] = value["rev"]
    return revisions


def md5_digest(data: bytes) -> str:
    # The digest CouchDB reports for an attachment stored as is (not gzip-compressed).
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def design_ids(db) -> list[str]:
    """The ids of every design document in the database: one per token type, and any others."""
    rows = request(db, "GET", "_all_docs", params={"startkey": '"_design/"', "endkey": '"_design0"'}).json()["rows"]
    return [row["id"] for row in rows]
