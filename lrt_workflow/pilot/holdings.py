"""The tokens one pilot holds: how it claims them, saves them, renews their leases and gives them back.

**Claiming.** One round claims up to ``n`` tokens with three requests whatever ``n`` is:
the view's first ids (a window several times wider than ``n``, so that pilots starting
together pick different tokens), the documents themselves, with their attachments, and
one ``_bulk_docs`` of the claims. The documents, not the view rows, decide: another
pilot may have locked a token after the view was read, so a token is claimed only if
its document is still free, and the claim is written with the revision that check
read. Each document of the bulk write lands or conflicts on its own; a conflict means
another pilot won that token. No token is ever claimed twice.

**Saving.** A save that meets a conflict re-reads the token and, if it is still this
pilot's (or, when asked, nobody's), applies the change to the new revision: a
concurrent write is kept, and a token another pilot has taken is never overwritten.

**Leases.** Every held token, running or waiting its turn, has its lease renewed
(``heartbeat``) once it has gone ``heartbeat_seconds`` without a renewal: the due
ones together, in one bulk write. A token whose jobs take less than that is never
written between its claim and its result.
"""

from __future__ import annotations

import base64
import copy
import logging
import random
import threading
import time
from typing import Callable, Iterable

from lrt_workflow.couchdb.client import CouchDBError, UpdateConflict
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.token import modifiers

log = logging.getLogger("lrt_workflow.pilot.worker")

#: The view rows one claim round looks at, at least; a round for n tokens looks at 8n or more.
CLAIM_WINDOW = 25
#: Rounds in a row that find tokens in the view but claim none, before the view counts as empty.
CLAIM_ATTEMPTS = 10
SAVE_ATTEMPTS = 20
#: Attachment fields kept in a stub: enough for both servers to keep the attachment as it is.
STUB_FIELDS = ("content_type", "digest", "revpos", "length")


def take_inputs(doc: dict) -> dict[str, bytes]:
    """The job's input files carried inline in ``doc`` (fetched with ``attachments=true``), decoded;
    every attachment of ``doc`` becomes a stub again, so saving ``doc`` keeps them as they are.
    A previous attempt's logs are not the job's input."""
    inputs = {}
    for name, attachment in (doc.get("_attachments") or {}).items():
        if "data" in attachment and not modifiers.is_log_attachment(name):
            inputs[name] = base64.b64decode(attachment["data"])
        doc["_attachments"][name] = {**{k: attachment[k] for k in STUB_FIELDS if k in attachment}, "stub": True}
    return inputs


def lost_because(doc: dict, worker_id: str) -> str:
    """Why a token this worker held is no longer its own, as the token now says."""
    holder = doc.get("worker_id")
    if holder and holder != worker_id and modifiers.holds(doc, holder):
        return f"another worker holds the token now ({holder})"
    reason = f": {doc['error_reason']}" if modifiers.state(doc) == "error" and doc.get("error_reason") else ""
    return f"the token is no longer this worker's, it is {modifiers.state(doc)}{reason}"


class Holdings:
    """The tokens one worker holds (claimed, not yet finished or given back), as last saved."""

    def __init__(self, store: TokenStore, worker_id: str, hostname: str, pilot: dict):
        self.store = store
        self.worker_id = worker_id
        self.hostname = hostname
        self.pilot = pilot
        self.lock = threading.RLock()  # the heartbeat thread and the main loop both save tokens
        self.docs: dict[str, dict] = {}
        self.renewed: dict[str, float] = {}  # time.monotonic() of each lease's last renewal
        self.queue: list[str] = []  # claimed, job not started yet, in order
        self.inputs: dict[str, dict[str, bytes]] = {}  # their attachments, fetched with the claim
        self.lost: dict[str, str] = {}  # tokens taken from this worker, and how
        self.conflicts = 0  # claims another worker won

    def __contains__(self, token_id: str) -> bool:
        return token_id in self.docs

    # --- claiming --------------------------------------------------------------

    def claim(self, view: str, n: int = 1) -> list[dict]:
        """Lock up to ``n`` free tokens in one round; [] when the view has none left."""
        for attempt in range(CLAIM_ATTEMPTS):
            window = max(CLAIM_WINDOW, 8 * n) * (attempt + 1)
            ids = self.store.ids(view, limit=window)
            if not ids:
                return []
            if len(ids) < window:  # the last ones: leave some for the other pilots
                n = max(1, min(n, len(ids) // 4))
            claimed = self._claim_round(random.sample(ids, min(n, len(ids))))
            if claimed:
                return claimed
        return []

    def _claim_round(self, ids: list[str]) -> list[dict]:
        docs, inputs = [], {}
        for doc in self.store.fetch(ids, attachments=True):
            # The document, not the view row, decides: another worker may
            # have locked it after the view was read.
            if not modifiers.is_free(doc):
                continue
            inputs[doc["_id"]] = take_inputs(doc)
            docs.append(modifiers.claim(doc, worker_id=self.worker_id, hostname=self.hostname, **self.pilot))
        if not docs:
            return []
        saved, conflicts = self.store.write(docs)  # with the revisions just checked: a 409 means we lost
        self.conflicts += len(conflicts)
        now = time.monotonic()
        claimed = []
        with self.lock:
            for doc in docs:
                if doc["_id"] in saved:
                    doc["_rev"] = saved[doc["_id"]]
                    self.lost.pop(doc["_id"], None)  # lost once (reset, cancelled), claimed again: ours now
                    self.docs[doc["_id"]] = doc
                    self.renewed[doc["_id"]] = now
                    self.inputs[doc["_id"]] = inputs[doc["_id"]]
                    self.queue.append(doc["_id"])
                    claimed.append(doc)
        return claimed

    def next_queued(self, lease_seconds: float) -> dict | None:
        """The next claimed token whose job has not started, taken off the queue. One whose
        lease went unrenewed for half the lease (the server was away) is dropped: this
        worker can no longer be sure it holds it."""
        with self.lock:
            while self.queue:
                token_id = self.queue.pop(0)
                if token_id not in self.docs:
                    continue
                silent = time.monotonic() - self.renewed[token_id]
                if silent > lease_seconds / 2:
                    log.warning("token %s: no lease renewal for %.0f s; leaving it to the orchestrator",
                                token_id, silent)
                    self.forget(token_id)
                    continue
                return self.docs[token_id]
        return None

    # --- saving ----------------------------------------------------------------

    def save(self, token_id: str, change: Callable[[dict], object], *, allow_free: bool = False) -> bool:
        """Apply ``change`` to a held token and save it, merging with whatever was written meanwhile.

        Returns False, writing nothing, when the token is gone or another worker holds it.
        ``change`` edits a copy: a save that fails leaves the token as it was last saved."""
        with self.lock:
            current = self.docs[token_id]
            for _ in range(SAVE_ATTEMPTS):
                doc = copy.deepcopy(current)
                change(doc)
                try:
                    doc["_rev"] = self.store.save(doc)
                except UpdateConflict:
                    current = self.store.get(token_id)
                    if not self._still_mine(token_id, current, allow_free):
                        return False
                    continue
                self.docs[token_id] = doc
                return True
        raise UpdateConflict(f"token {token_id} kept changing while this worker saved it")

    def _still_mine(self, token_id: str, doc: dict | None, allow_free: bool = False) -> bool:
        """After a conflict: whether the token as it is now may take this worker's change."""
        if doc is None:
            self.lose(token_id, "the token was deleted while this worker held it")
            return False
        if not (modifiers.holds(doc, self.worker_id) or (allow_free and modifiers.is_free(doc))):
            self.lose(token_id, lost_because(doc, self.worker_id))
            return False
        return True

    def save_all(self, ids: Iterable[str], change: Callable[[dict], object]) -> list[str]:
        """Apply ``change`` to held tokens and save them in one bulk write; each one that
        conflicts is re-read and takes the merging path of `save`. Returns the ids saved."""
        with self.lock:
            changed = {}
            for token_id in ids:
                if token_id in self.docs:
                    changed[token_id] = copy.deepcopy(self.docs[token_id])
                    change(changed[token_id])
            if not changed:
                return []
            saved, conflicts = self.store.write(list(changed.values()))
            for token_id, rev in saved.items():
                self.docs[token_id] = {**changed[token_id], "_rev": rev}
            done = list(saved)
            for token_id in conflicts:
                current = self.store.get(token_id)
                if self._still_mine(token_id, current):
                    self.docs[token_id] = current
                    if self.save(token_id, change):
                        done.append(token_id)
            return done

    def lose(self, token_id: str, reason: str) -> None:
        log.warning("token %s: %s; not overwriting it", token_id, reason)
        self.lost[token_id] = reason
        self.forget(token_id)

    def forget(self, token_id: str) -> None:
        """This worker no longer holds the token (it finished, gave it back, or lost it)."""
        with self.lock:
            self.docs.pop(token_id, None)
            self.renewed.pop(token_id, None)
            self.inputs.pop(token_id, None)
            if token_id in self.queue:
                self.queue.remove(token_id)

    # --- leases ----------------------------------------------------------------

    def renew_due(self, heartbeat_seconds: float) -> None:
        """Renew, in one bulk write, the leases of the held tokens that are due."""
        with self.lock:
            now = time.monotonic()
            due = [token_id for token_id, at in self.renewed.items() if now - at >= heartbeat_seconds]
            if not due:
                return
            try:
                renewed = self.save_all(due, modifiers.beat)
            except CouchDBError as error:
                log.warning("heartbeat for %s failed: %s", ", ".join(due), error)
                return
            now = time.monotonic()
            for token_id in renewed:
                self.renewed[token_id] = now

    def next_renewal_in(self, heartbeat_seconds: float) -> float:
        """Seconds until the next lease is due for renewal."""
        with self.lock:
            if not self.renewed:
                return heartbeat_seconds
            return min(heartbeat_seconds, max(0.01, min(self.renewed.values()) + heartbeat_seconds - time.monotonic()))

    def silent_for(self, token_id: str) -> float:
        """Seconds since the token's lease was last renewed. Without the lock: the job's watch
        must not wait for a heartbeat that is stuck retrying a server that has gone away."""
        return time.monotonic() - self.renewed.get(token_id, float("-inf"))

    # --- giving back -------------------------------------------------------------

    def release(self, ids: Iterable[str], reason: str) -> list[str]:
        """Hand held tokens back to ``todo`` unfinished, without counting a scrub, in one bulk write."""
        with self.lock:
            released = self.save_all(list(ids), lambda doc: modifiers.release(doc, reason=reason))
            for token_id in released:
                log.warning("released token %s back to todo (%s)", token_id, reason)
                self.forget(token_id)
            return released
