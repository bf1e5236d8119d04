"""Requests for the documents of one database: one at a time and in bulk, and the changes feed.
The HTTP that `TokenStore` is built on; apart from it, only the listing of design documents is
used elsewhere.

They go through the client's session (`lrt_workflow.couchdb.client`), so credentials, TLS,
retries and error messages are handled there. The embedded pouchdb-server ignores
``If-Match``, so a revision always travels in the query string or the body.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
import urllib.parse
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from lrt_workflow.couchdb.client import (
    AuthenticationFailed,
    CouchDBError,
    ServerUnreachable,
    UpdateConflict,
    http_error,
    request as session_request,
    translate_errors,
)

BATCH_SIZE = 500
#: How often a followed changes feed sends a heartbeat (an empty line), in seconds: the longest
#: the client waits before it looks at its clock and its stop flag again.
FEED_HEARTBEAT_SECONDS = 1.0


def batched(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def lazy_batches(items: Iterable, size: int) -> Iterator[list]:
    """Lists of ``size`` items, read from ``items`` only as each is needed."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


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
        response = session_request(db.r_session, method, url, **kwargs)
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


def bulk_body(docs: Sequence[dict]) -> bytes:
    """The body of a ``_bulk_docs`` request, encoded once (compact: no spaces)."""
    return json.dumps({"docs": list(docs)}, separators=(",", ":")).encode()


def bulk_send(db, body: bytes) -> tuple[dict[str, str], list[str]]:
    """POST an encoded ``_bulk_docs`` body: ({id: new rev} of the saved, [ids that conflicted]).
    Each document succeeds or conflicts on its own. Safe to call from another thread."""
    saved, conflicts = {}, []
    response = request(db, "POST", "_bulk_docs", data=body, headers={"Content-Type": "application/json"})
    for row in response.json():
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


def bulk_write(db, docs: Sequence[dict]) -> tuple[dict[str, str], list[str]]:
    """``_bulk_docs``: returns ({id: new rev} of the saved, [ids that conflicted])."""
    if not docs:
        return {}, []
    return bulk_send(db, bulk_body(docs))


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


def update_seq(db):
    """The database's current update sequence: where a changes feed that misses nothing starts."""
    return request(db, "GET").json()["update_seq"]


def follow_changes(db, selector: Mapping, since, seconds: float, *, enough: int = 1,
                    stop: Callable[[], bool] | None = None) -> tuple[int, object]:
    """Follow the continuous ``_changes`` feed of the documents matching the Mango ``selector``
    from ``since``, until ``enough`` changes came, ``seconds`` passed or ``stop()`` holds.

    Returns (how many changes came, the sequence to follow on from). One request, however
    long it waits: the server sends a change as it happens and an empty line every
    `FEED_HEARTBEAT_SECONDS`, when the client looks at its clock. Both servers filter
    with ``filter=_selector``: Apache CouchDB reads the selector from the body,
    pouchdb-server from the query string, so it goes in both. The body is asked for
    uncompressed, or pouchdb-server's compression holds the lines back.
    """
    deadline = time.monotonic() + seconds
    heartbeat = max(0.05, min(FEED_HEARTBEAT_SECONDS, seconds))
    selector_json = json.dumps(selector, separators=(",", ":"))
    params = {"feed": "continuous", "filter": "_selector", "since": since if isinstance(since, str) else
              json.dumps(since), "heartbeat": int(heartbeat * 1000), "selector": selector_json}
    seen, last = 0, since
    response = request(db, "POST", "_changes", params=params, data=json.dumps({"selector": selector}),
                        headers={"Content-Type": "application/json", "Accept-Encoding": "identity"},
                        stream=True, timeout=(10, heartbeat * 5 + 5))
    try:
        with translate_errors(db.client.server_url, db.database_name):
            for line in response.iter_lines(chunk_size=1024):
                if line:
                    change = json.loads(line)
                    if "seq" in change:
                        seen, last = seen + 1, change["seq"]
                    elif "last_seq" in change:  # the server ended the feed
                        return seen, change["last_seq"]
                if seen >= enough or time.monotonic() >= deadline or (stop and stop()):
                    break
    except ServerUnreachable:
        if time.monotonic() < deadline - heartbeat:  # not the read timeout at the end of the wait
            raise
    finally:
        response.close()
    return seen, last


def md5_digest(data: bytes) -> str:
    # The digest CouchDB reports for an attachment stored as is (not gzip-compressed).
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def design_ids(db) -> list[str]:
    """The ids of every design document in the database: one per token type, and any others."""
    rows = request(db, "GET", "_all_docs", params={"startkey": '"_design/"', "endkey": '"_design0"'}).json()["rows"]
    return [row["id"] for row in rows]
