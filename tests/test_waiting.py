"""Waiting on the changes feed: the wait step and an idle pilot learn at once that tokens finished,
without polling faster. Each change is staged by a hook, just as the waiter starts to follow the feed."""

import json
import time

import pytest

from lrt_workflow.config import validate_config
from lrt_workflow.pipeline import step_names, step_settings
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.pilot.worker import Worker
from lrt_workflow.steps import pilots
from lrt_workflow.token import Token, modifiers, token_id, views


class FollowHooked(TokenStore):
    """A TokenStore that runs ``on_follow()`` once, just before it starts following the feed, and
    fails when ``counts`` is asked more than ``max_counts`` times (a waiter polling instead)."""

    def __init__(self, db, token_type, *, on_follow, max_counts=None, **kwargs):
        super().__init__(db, token_type, **kwargs)
        self.on_follow, self.max_counts, self.counted, self.followed = on_follow, max_counts, 0, []

    def follow(self, since, seconds, **kwargs):
        self.followed.append(kwargs.get("match"))
        if self.on_follow:
            hook, self.on_follow = self.on_follow, None
            hook()
        return super().follow(since, seconds, **kwargs)

    def counts(self):
        self.counted += 1
        assert self.max_counts is None or self.counted <= self.max_counts, "polled instead of following the feed"
        return super().counts()


def make_tokens(store, n, obsid="L1"):
    tokens = [Token(store.token_type, token_id(store.token_type, obsid, i), OBSID=obsid, STARTSB=f"{i:03d}")
              for i in range(n)]
    store.create(tokens)
    return [t["_id"] for t in tokens]


def finish(store, ids, worker="elsewhere"):
    def done(doc):
        modifiers.claim(doc, worker_id=worker, hostname="h")
        modifiers.conclude(doc, 0)
    store.modify(ids, done)


@pytest.fixture
def store(database):
    store = TokenStore(database, "demo", obsid="L1")
    store.ensure_design()
    return store


def test_the_feed_counts_only_the_steps_tokens_that_finished(store, database):
    ids = make_tokens(store, 3)
    other_step = TokenStore(database, "other")
    other_ids = make_tokens(other_step, 2)
    other_observation = make_tokens(store, 2, obsid="L2")
    since = store.update_seq()
    finish(other_step, other_ids)  # another step's tokens
    finish(store, other_observation)  # this step's, of another observation
    store.set_fields(ids[:1], lock=int(time.time()), worker_id="w")  # claimed, not finished
    assert store.follow(since, 0.3, match=views.FINISHED)[0] == 0
    finish(store, ids[1:])
    seen, last = store.follow(since, 30, match=views.FINISHED, enough=2)
    assert seen == 2
    assert store.follow(last, 0.3, match=views.FINISHED)[0] == 0  # nothing new after it


def test_the_wait_learns_of_the_last_token_from_the_feed_and_never_sleeps_a_poll(store, database, couchdb_server,
                                                                                 tmp_path, monkeypatch):
    for name, value in couchdb_server.environment().items():
        monkeypatch.setenv(name, value)
    ids = make_tokens(store, 3)
    finish(store, ids[:2])
    hooked = FollowHooked(database, "demo", obsid="L1", on_follow=lambda: finish(store, ids[2:]))
    monkeypatch.setattr(pilots, "store_for", lambda settings, obsid=None: hooked)
    config = validate_config({
        "srm_file": "x", "token": {"type": "demo", "template": "x"},
        "couchdb": {"url": couchdb_server.url, "database": database.database_name},
        "wait": {"poll_seconds": 600, "timeout_seconds": 900},
    })
    config = step_settings(config, step_names(config)[0])
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"ids": ids, "obsid": "L1", "type": "demo"}))

    def no_sleep(seconds):
        raise AssertionError(f"the wait slept {seconds} s instead of following the changes feed")

    status = pilots.wait_step(config, tokens, tmp_path / "status.json", tmp_path / "polls.jsonl",
                              tmp_path / "results.json", sleep=no_sleep)
    assert status["counts"]["done"] == 3
    assert hooked.followed == [views.FINISHED]
    polls = [json.loads(line) for line in (tmp_path / "polls.jsonl").read_text().splitlines()]
    assert [p["done"] for p in polls] == [2, 3]


def test_a_pilot_waiting_for_another_pilots_token_wakes_when_it_finishes(store, database, tmp_path):
    ids = make_tokens(store, 2)
    finish(store, ids[:1])
    store.set_fields(ids[1:], lock=int(time.time()), worker_id="other-worker", status="locked")
    # The other pilot finishes just as this one starts to wait; polling would ask for counts again and again.
    hooked = FollowHooked(database, "demo", obsid="L1", on_follow=lambda: finish(store, ids[1:], "other-worker"),
                          max_counts=2)
    report = Worker(hooked, "true", workdir=tmp_path, until_finished=True, poll_seconds=600).run()
    assert report.processed == []
    assert hooked.followed == [views.FINISHED_OR_FREE]
    assert store.counts()["done"] == 2


class ViewsRecorded(TokenStore):
    """A TokenStore that records the name of every view it reads, and every document it reads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.views_read = []
        self.documents_read = []

    def view_rows(self, view, **params):
        self.views_read.append(view)
        return super().view_rows(view, **params)

    def fetch(self, ids, **kwargs):
        self.documents_read += ids
        return super().fetch(ids, **kwargs)


def test_the_wait_reads_only_the_views_its_polls_keep_built(store, database, couchdb_server, tmp_path, monkeypatch):
    # pouchdb-server builds each view on its first query: a done or error view first read at the
    # end cost the wait seconds after the last token finished.
    for name, value in couchdb_server.environment().items():
        monkeypatch.setenv(name, value)
    ids = make_tokens(store, 3)
    finish(store, ids)
    store.set_fields(ids[:2], **{modifiers.RESULTS: "file:///results/x.tar"})
    elsewhere = make_tokens(store, 2, obsid="L2")
    finish(store, elsewhere[:1])
    store.modify(elsewhere[1:], lambda doc: modifiers.claim(doc, worker_id="w", hostname="h") or
                 modifiers.conclude(doc, 1))
    recorded = ViewsRecorded(database, "demo", obsid="L1")
    monkeypatch.setattr(pilots, "store_for", lambda settings, obsid=None: recorded)
    config = step_settings(validate_config({
        "srm_file": "x", "token": {"type": "demo", "template": "x"},
        "couchdb": {"url": couchdb_server.url, "database": database.database_name},
    }), "demo")
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"ids": ids, "obsid": "L1", "type": "demo"}))
    status = pilots.wait_step(config, tokens, tmp_path / "status.json", tmp_path / "polls.jsonl",
                              tmp_path / "results.json")
    assert set(recorded.views_read) == {views.BY_OBSERVATION, views.LAST_SEEN}
    # The done tokens' results come with the view's rows: reading 1,000 documents cost pouchdb-server a second.
    assert recorded.documents_read == []
    assert status["counts"]["done"] == 3 and status["errors"] == []
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [r["token"] for r in results] == ids[:2]
    assert {r["url"] for r in results} == {"file:///results/x.tar"}


def test_the_wait_reads_the_results_of_tokens_listed_by_an_older_design_document(store, database, tmp_path):
    # A design document from before the counting views carried the results emits 1 for every token.
    ids = make_tokens(store, 2)
    finish(store, ids)
    store.set_fields(ids, **{modifiers.RESULTS: "file:///results/y.tar", "STARTSB": 7})
    design = store.design_doc()
    design["views"][views.BY_OBSERVATION]["map"] = design["views"][views.BY_OBSERVATION]["map"].replace(
        "emit([(doc.OBSID || null), state(doc)], ", "emit([(doc.OBSID || null), state(doc)], 1 || ")
    store.save(design)
    recorded = ViewsRecorded(database, "demo", obsid="L1")
    listing, done = pilots.finished_tokens(recorded)
    assert listing["done"] == sorted(ids) and recorded.documents_read == sorted(ids)
    assert sorted(done) == sorted((i, "file:///results/y.tar", 7, False) for i in ids)
