"""The bulk engine against a real embedded server."""

import time

import pytest

from lrt_workflow.couchdb import UpdateConflict
from lrt_workflow.errors import LrtError
from lrt_workflow.token import InvalidTokenType, Token, TokenStore, modifiers, token_id, views


def make_tokens(n, token_type="pref", obsid="L123"):
    return [Token(token_type, token_id(token_type, obsid, i), OBSID=obsid, STARTSB=f"{i:03d}") for i in range(n)]


@pytest.fixture
def store(database):
    store = TokenStore(database, "pref", batch_size=40)
    store.ensure_design()
    return store


def test_design_document_is_written_once_and_keeps_user_views(store):
    assert store.ensure_design() is False
    store.add_view("mine", {"map": "function (doc) { emit(doc._id, 1); }"})
    assert store.ensure_design() is False
    assert {"todo", "locked", "done", "error", "overview_view", "mine"} <= set(store.view_names())
    doc = store.design_doc()
    assert doc["PICAS_API_VERSION"]


def test_create_is_bulk_idempotent_and_keeps_progress(store):
    tokens = make_tokens(100)
    files = {t["_id"]: {"srm.txt": f"srm://{t['_id']}\n".encode()} for t in tokens}
    first = store.create(tokens, files)
    assert len(first.created) == 100 and not first.found
    store.set_fields([tokens[0]["_id"]], lock=123, hostname="worker-1")
    again = store.create(tokens, files)
    assert not again.created and sorted(again.found) == sorted(t["_id"] for t in tokens)
    kept = store.get(tokens[0]["_id"])
    assert (kept["lock"], kept["hostname"]) == (123, "worker-1")
    assert store.get_attachment(tokens[5]["_id"], "srm.txt") == f"srm://{tokens[5]['_id']}\n".encode()


def test_create_with_overwrite_replaces(store):
    tokens = make_tokens(3)
    store.create(tokens)
    store.set_fields([tokens[0]["_id"]], lock=5)
    report = store.create(tokens, overwrite=True)
    assert sorted(report.overwritten) == sorted(t["_id"] for t in tokens)
    assert store.get(tokens[0]["_id"])["lock"] == 0


def test_create_refuses_duplicate_ids_and_foreign_types(store):
    tokens = make_tokens(2)
    with pytest.raises(LrtError, match="repeated: pref_L123_SB001"):
        store.create(tokens + [tokens[1]])
    with pytest.raises(LrtError, match="type 'other'"):
        store.create(make_tokens(1, token_type="other"))
    assert store.counts()["total"] == 0


def test_counts_are_a_partition_that_sums_to_the_total(store):
    tokens = make_tokens(20)
    store.create(tokens)
    ids = [t["_id"] for t in tokens]
    now = int(time.time())
    store.set_fields(ids[0:3], lock=now, hostname="h")                       # locked
    store.set_fields(ids[3:7], lock=now, done=now, output=0)                 # done
    store.set_fields(ids[7:9], lock=now, done=now, output=3)                 # error
    store.set_fields(ids[9:10], lock=now, done=now, output="", exit_code=0)  # done, picas style
    store.set_fields(ids[10:11], lock=now, status="error")                   # error, marked by worker
    store.set_fields(ids[11:12], lock=99, done=99, exit_code="")              # picas crash
    counts = store.counts()
    assert counts == {"todo": 8, "locked": 3, "done": 5, "error": 4, "total": 20}
    assert sum(counts[s] for s in ("todo", "locked", "done", "error")) == counts["total"]
    for state in ("todo", "locked", "done", "error"):
        assert len(store.ids(state)) == counts[state]


def test_counts_take_one_request(store):
    store.create(make_tokens(5))
    store.counts()
    calls = []
    hook = lambda response, *args, **kwargs: calls.append(response.url)  # noqa: E731
    store.db.r_session.hooks["response"].append(hook)
    try:
        store.counts()
    finally:
        store.db.r_session.hooks["response"].remove(hook)
    assert len(calls) == 1 and "overview_view" in calls[0]


def test_reset_increments_scrub_count_records_time_and_can_drop_logs(store):
    tokens = make_tokens(4)
    store.create(tokens, {t["_id"]: {"srm.txt": b"in"} for t in tokens})
    ids = [t["_id"] for t in tokens]
    store.set_fields(ids, lock=1, done=2, output=1, hostname="h", status="error")
    store.put_attachment(ids[0], "job.log", b"log")
    reset = store.reset_view("error", drop_logs=True)
    assert sorted(reset) == sorted(ids)
    doc = store.get(ids[0])
    assert (doc["lock"], doc["done"], doc["output"], doc["hostname"], doc["status"]) == (0, 0, "", "", "todo")
    assert doc["scrub_count"] == 1 and doc["times"]["reset"] > 0
    assert set(doc["_attachments"]) == {"srm.txt"}
    assert store.counts()["todo"] == 4


def test_reset_respects_max_scrub(store):
    tokens = make_tokens(2)
    store.create(tokens)
    ids = [t["_id"] for t in tokens]
    store.set_fields(ids[:1], scrub_count=2)
    assert store.reset(ids, max_scrub=2) == [ids[1]]


def test_stale_locks_are_reset_only_past_the_lease(store):
    tokens = make_tokens(3)
    store.create(tokens)
    ids = [t["_id"] for t in tokens]
    now = time.time()
    store.set_fields(ids[:1], lock=int(now - 500), hostname="dead")
    store.set_fields(ids[1:2], lock=int(now - 10), hostname="alive")
    store.set_fields(ids[2:3], lock=int(now - 500), done=int(now - 1), output=0)
    assert store.stale_ids(100, now) == [ids[0]]
    assert store.reset_stale(100, now) == [ids[0]]
    assert store.get(ids[0])["scrub_count"] == 1
    assert store.get(ids[1])["hostname"] == "alive"
    assert store.counts() == {"todo": 1, "locked": 1, "done": 1, "error": 0, "total": 3}


def test_modify_rereads_on_conflict_and_keeps_the_other_writers_update(store):
    tokens = make_tokens(1)
    store.create(tokens)
    tid = tokens[0]["_id"]
    raced = []

    def change(doc):
        if not raced:  # a worker writes between our read and our write
            raced.append(True)
            other = store.get(tid)
            other["status"] = "running"
            store.save(other)
        doc["note"] = "ours"

    assert store.modify([tid], change) == [tid]
    doc = store.get(tid)
    assert doc["status"] == "running" and doc["note"] == "ours"


def test_attach_in_bulk_is_idempotent(store):
    tokens = make_tokens(50)
    store.create(tokens)
    assert len(store.attach("parset", b"x=1\n")) == 50
    assert store.attach("parset", b"x=1\n") == []
    assert len(store.attach("parset", b"x=2\n")) == 50
    assert store.get_attachment(tokens[49]["_id"], "parset") == b"x=2\n"


PARSET = b"".join(b"msin.datacolumn = DATA\nmsout.storagemanager = dysco  # line %d\n" % i for i in range(40))


def revisions(store, ids):
    return {doc["_id"]: doc["_rev"] for doc in store.fetch(ids)}


def test_attaching_the_same_text_again_writes_no_token(store):
    """Apache CouchDB gzips text/* attachments and reports the MD5 of the compressed bytes as
    their digest; an unchanged attachment must still be recognised there, with no new revision."""
    tokens = make_tokens(30)
    store.create(tokens)
    ids = [t["_id"] for t in tokens]
    assert sorted(store.attach("step.parset", PARSET, ids)) == sorted(ids)
    before = revisions(store, ids)
    downloads = []
    hook = lambda response, *args, **kwargs: downloads.append(response.url) if "step.parset" in response.url else None  # noqa: E731
    store.db.r_session.hooks["response"].append(hook)
    try:
        assert store.attach("step.parset", PARSET, ids) == []
    finally:
        store.db.r_session.hooks["response"].remove(hook)
    assert revisions(store, ids) == before
    assert len(downloads) <= 1, "one download per distinct digest settles it for every token"
    assert store.get_attachment(ids[7], "step.parset") == PARSET


def test_attach_rewrites_exactly_the_tokens_whose_content_differs(store):
    tokens = make_tokens(12)
    store.create(tokens)
    ids = [t["_id"] for t in tokens]
    changed = PARSET.replace(b"dysco", b"DYSCO")  # the same length, other bytes
    store.attach("step.parset", PARSET, ids[:4])
    store.attach("step.parset", changed, ids[4:8])  # ids[8:] have none
    assert sorted(store.attach("step.parset", PARSET, ids)) == sorted(ids[4:])
    assert {store.get_attachment(i, "step.parset") for i in ids} == {PARSET}
    assert store.attach("step.parset", PARSET, ids) == []


def test_attach_of_binary_content_is_idempotent_too(store):
    tokens = make_tokens(3)
    store.create(tokens)
    data = bytes(range(256)) * 4
    assert len(store.attach("table.bin", data, content_type="application/octet-stream")) == 3
    assert store.attach("table.bin", data, content_type="application/octet-stream") == []
    assert store.get_attachment(tokens[1]["_id"], "table.bin") == data


def test_save_conflict_is_typed(store):
    store.create(make_tokens(1))
    doc = store.get("pref_L123_SB000")
    store.save(dict(doc))
    with pytest.raises(UpdateConflict, match="pref_L123_SB000"):
        store.save(dict(doc))


def test_purge_deletes_tokens_of_this_type_only(store, database):
    store.create(make_tokens(5))
    other = TokenStore(database, "other")
    other.ensure_design()
    other.create(make_tokens(2, token_type="other"))
    assert len(store.purge()) == 5
    assert store.counts()["total"] == 0
    assert other.counts()["total"] == 2


@pytest.mark.parametrize("bad", ["", "has space", "_design", "9lives", "a/b", "x" * 65])
def test_invalid_token_type(database, bad):
    with pytest.raises(InvalidTokenType, match="not valid"):
        TokenStore(database, bad)


def test_create_writes_a_stream_of_tokens_while_reading_it(store):
    tokens = make_tokens(120)  # batches of 40: two in flight, the first written before the third is read
    written_before_the_third_batch = []

    def stream():
        for number, token in enumerate(tokens):
            if number == 80:
                written_before_the_third_batch.append(store.counts()["total"])
            yield token

    report = store.create(stream())
    assert len(report.created) == 120
    assert written_before_the_third_batch[0] >= 40


def test_a_stream_stops_at_its_first_bad_token(store):
    good = make_tokens(3, obsid="L9")
    with pytest.raises(LrtError, match="type 'other'"):
        store.create(token for token in good + make_tokens(1, token_type="other"))
    with pytest.raises(LrtError, match="repeated: pref_L9_SB000"):
        store.create(token for token in good + good[:1])


def test_ids_by_state_lists_one_observations_tokens_as_the_state_views_do(database):
    everything = TokenStore(database, "byst")
    everything.ensure_design()
    everything.create([Token("byst", token_id("byst", o, i), OBSID=o) for o in ("L1", "L2") for i in range(4)])
    ids = everything.ids("todo")
    everything.modify(ids[:3], lambda doc: modifiers.claim(doc, worker_id="w", hostname="h"))
    for token, code in ((ids[0], 0), (ids[1], 1)):  # of L1: one done, one error, one locked, one todo
        everything.modify([token], lambda doc: modifiers.conclude(doc, code) or None)
    for store, n in ((everything, 8), (TokenStore(database, "byst", obsid="L1"), 4)):
        listing = store.ids_by_state()
        assert listing == {state: store.ids(state) for state in views.STATES}
        assert sum(map(len, listing.values())) == n and all(listing.values())
        assert store.ids_by_state("done") == {**dict.fromkeys(views.STATES, []), "done": store.ids("done")}
