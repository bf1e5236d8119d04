"""Tokens made here are claimed, processed and closed by SURF's own picas RunActor."""

import signal

import pytest

from lrt_workflow.token import TokenHandler, TokenSet

picas_actors = pytest.importorskip("picas.actors")
from picas.clients import CouchDB as PicasCouchDB  # noqa: E402
from picas.modifiers import BasicTokenModifier  # noqa: E402


class RecordingActor(picas_actors.RunActor):
    def __init__(self, db, **view_params):
        super().__init__(db, view="todo", **view_params)
        self.modifier = BasicTokenModifier()
        self.seen = []

    def process_task(self, task):
        self.seen.append((task["_id"], task["STARTSB"], task["scrub_count"]))
        task["exit_code"] = 0 if task["STARTSB"] != "004" else 1
        self.modifier.close(task)


@pytest.fixture
def keep_signal_handlers():
    # RunActor installs its own SIGTERM/SIGINT handlers in the test process.
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_runactor_processes_our_tokens_and_views_show_them_done(database, couchdb_server, keep_signal_handlers):
    handler = TokenHandler("pref", database=database)
    TokenSet(handler, {"Job": {"variables": {"OBSID": "L1"}}}).create_dict_tokens(
        {str(i): [f"srm://x/L1_SB{i:03d}_a.tar"] for i in range(6)}, id_append="L1", file_upload="srm.txt"
    )
    user, password = couchdb_server.auth or (None, "")
    client = PicasCouchDB(url=couchdb_server.url.rstrip("/"), db=database.database_name, username=user,
                          password=password)
    actor = RecordingActor(client, design_doc="pref")
    actor.run()
    assert sorted(startsb for _, startsb, _ in actor.seen) == [f"{i:03d}" for i in range(6)]
    assert handler.counts() == {"todo": 0, "locked": 0, "done": 5, "error": 1, "total": 6}
    failed = handler.store.get("pref_L1_SB004")
    assert failed["exit_code"] == 1 and failed["done"] > 0
    assert [r["id"] for r in handler.list_tokens_from_view("error")] == ["pref_L1_SB004"]
    # the attachment we sent inline survived the actor's save
    assert handler.store.get_attachment("pref_L1_SB002", "srm.txt") == b"srm://x/L1_SB002_a.tar\n"
