"""The classic GRID_LRT token API, every public method, against a real embedded server."""

import io
import json
import os
from pathlib import Path

import pytest

from lrt_workflow.couchdb import UpdateConflict
from lrt_workflow.errors import LrtError
from lrt_workflow.srmlist import slice_dicts, srmlist
from lrt_workflow.token import (
    Token,
    TokenDictBuilder,
    TokenHandler,
    TokenJsonBuilder,
    TokenList,
    TokenReduceView,
    TokenSet,
    TokenStore,
    TokenView,
    caToken,
    get_all_design_docs,
    purge_tokens,
    reset_all_tokens,
)
from lrt_workflow.classic.token import DuplicateToken

DATA = Path(__file__).parent / "data"
CAL_PREF3 = DATA / "token-config" / "cal_pref3.json"
SRM_50 = DATA / "srm" / "srm_50_sara.txt"


def test_the_original_documentation_example_runs_as_written(database, tmp_path):
    """The usage example of the original docs, with GRID_LRT replaced by lrt_workflow."""
    db = database
    attachment = tmp_path / "Pre-Facet-Calibrator-v3.parset"
    attachment.write_text("msin=...\n")
    token_id = "restructure_test_token"

    assert (token_id in db) is False
    tl = TokenList(database=db, token_type="restructure_test")
    tl.add_view(TokenView("temp", 'doc.type == "{}" '.format(tl.token_type)))
    for token in tl.list_view_tokens("temp"):
        tl.append(caToken(token_type=tl.token_type, token_id=token["_id"], database=db))
    tl.fetch()
    t1 = caToken(database=db, token_type="restructure_test", token_id=token_id)
    t1.build(TokenJsonBuilder(str(CAL_PREF3)))
    t1.save()
    t1.add_attachment(attachment_name="attachment_name_in_db.txt", filename=str(attachment))

    remote = db[token_id]
    remote.fetch()
    assert remote["OBSID"] == "L229585" and remote["STARTSB"] == "000"
    assert remote["config.json"]["variables"]["_attachments"]["$PARSET"] == "Pre-Facet-Calibrator-v3.parset"
    assert "attachment_name_in_db.txt" in remote["_attachments"]
    # and the list now finds it
    found = tl.list_view_tokens("temp")
    assert [t["_id"] for t in found] == [token_id]
    assert found[0]["OBSID"] == "L229585"


def test_token_fields_build_reset_archive(tmp_path):
    token = Token("pref", "pref_L1_SB000", OBSID="L1")
    for field in ("lock", "done", "hostname", "scrub_count", "output", "exit_code", "status", "PICAS_API_VERSION"):
        assert field in token
    builder = TokenDictBuilder(json.loads(CAL_PREF3.read_text()))
    token.build(builder)
    assert token["_id"] == "pref_L1_SB000" and token["type"] == "pref"
    assert token["PIPELINE_STEP"] == "pref3_cal_CI"
    token.update(lock=5, done=6, output=1, hostname="h")
    token.reset()
    assert (token["lock"], token["done"], token["output"], token["scrub_count"], token["status"]) == (0, 0, "", 1, "todo")
    path = token.archive(tmp_path)
    assert json.loads(path.read_text())["_id"] == "pref_L1_SB000"


def test_token_gets_deterministic_id_from_obsid_and_startsb():
    assert Token("pref", OBSID="L229507", STARTSB="100")["_id"] == "pref_L229507_SB100"


def test_token_synchronize(database):
    local = Token("pref", "pref_L1_SB000", note="local")
    local.synchronize(database, upload=True)
    remote = database["pref_L1_SB000"]
    remote.fetch()
    assert remote["note"] == "local"
    remote["note"] = "remote"
    remote["extra"] = 1
    remote.save()
    local["note"] = "changed here"
    local.synchronize(database)  # server wins
    assert local["note"] == "remote" and local["extra"] == 1
    local["note"] = "mine"
    local.synchronize(database, prefer_local=True, upload=True)
    remote.fetch()
    assert remote["note"] == "mine"


def test_catoken_save_fetch_delete_and_attachments(database, tmp_path):
    token = caToken(database, "pref", "pref_L1_SB010", OBSID="L1")
    token.save()
    source = tmp_path / "srm.txt"
    source.write_bytes(b"srm://one\nsrm://two\n")
    token.add_attachment(str(source), "lists/srm.txt")
    assert "lists/srm.txt" in token["_attachments"]
    copy = caToken(database, "pref", "pref_L1_SB010").fetch()
    assert copy["OBSID"] == "L1"
    paths = copy.get_all_attachments(tmp_path / "out")
    assert [p.name for p in paths] == ["lists_srm.txt"]
    assert paths[0].read_bytes() == source.read_bytes()
    copy.delete()
    assert fetch_missing(database, "pref_L1_SB010")


def fetch_missing(database, token_id):

    return TokenStore(database, "pref").get(token_id) is None


def test_catoken_attachment_file_missing_is_clear(database, tmp_path):
    token = caToken(database, "pref", "pref_L1_SB011")
    token.save()
    with pytest.raises(LrtError, match="cannot read attachment file .*nope.parset"):
        token.add_attachment(str(tmp_path / "nope.parset"), "p")


def test_views_give_codes():
    map_code, reduce_code = TokenView("temp", "doc.lock > 0").get_codes("pref")
    assert 'doc.type === "pref"' in map_code and "doc.lock > 0" in map_code and reduce_code is None
    map_code, reduce_code = TokenReduceView("overview_view").get_codes("pref")
    assert "emit(state(doc), " in map_code and reduce_code == "_count"


def make_list(database, n=5):
    tl = TokenList("pref", database)
    for i in range(n):
        tl.append(caToken(database, "pref", f"pref_L1_SB{i:03d}", OBSID="L1", STARTSB=f"{i:03d}"))
    return tl


def test_tokenlist_append_checks_type_and_uniqueness(database):
    tl = make_list(database, 1)
    with pytest.raises(TypeError, match="type 'other'"):
        tl.append(Token("other", "x"))
    with pytest.raises(DuplicateToken, match="pref_L1_SB000"):
        tl.append(Token("pref", "pref_L1_SB000"))
    with pytest.raises(TypeError):
        tl.append({"_id": "not a token"})


def test_tokenlist_save_fetch_reset_attach_delete(database, tmp_path):
    tl = make_list(database)
    tl.add_token_views()
    tl.save()
    assert all("_rev" in t for t in tl)
    assert set(tl.get_views()) >= {"todo", "locked", "done", "error", "overview_view"}
    assert [t["_id"] for t in tl.list_view_tokens("todo")] == [t["_id"] for t in tl]
    assert tl.list_view_tokens("overview_view") is tl

    parset = tmp_path / "step.parset"
    parset.write_text("a=1\n")
    tl.add_attachment(str(parset), "step.parset")
    assert all("step.parset" in t["_attachments"] for t in tl)

    tl[0]["lock"] = 10
    tl.save()
    tl.reset()
    assert all(t["lock"] == 0 and t["scrub_count"] == 1 for t in tl)

    stale = make_list(database, 1)  # an old copy of token 0
    stale[0]["_rev"] = "1-0000"
    with pytest.raises(UpdateConflict, match="pref_L1_SB000"):
        stale.save()

    other = TokenList("pref", database)
    other.get_all_remote_tokens()
    assert sorted(t["_id"] for t in other) == sorted(t["_id"] for t in tl)

    tl.delete_all()
    assert len(tl) == 0
    assert TokenHandler("pref", database=database).counts()["total"] == 0


def test_tokenlist_views_and_design_doc(database):
    tl = make_list(database, 1)
    tl.add_token_views()
    tl.add_view(TokenView("mine", "doc.OBSID == 'L1'"))
    assert "mine" in tl.get_views()
    with pytest.raises(LrtError, match="'nope' does not exist"):
        tl.list_view_tokens("nope")
    tl.delete_views()
    assert tl.get_views() == []
    tl.delete_ddoc()
    assert "_design/pref" not in get_all_design_docs(database=database)


def test_tokenlist_archive_touches_design_doc_only_when_deleting(database, tmp_path):
    tl = make_list(database, 3)
    tl.add_token_views()
    tl.save()
    path = tl.archive(tmp_path, compress=True)
    assert path.name == "tokens_pref.tar.gz" and path.exists()
    assert "_design/pref" in get_all_design_docs(database=database)
    assert TokenHandler("pref", database=database).counts()["total"] == 3
    folder = tl.archive(tmp_path / "plain")
    assert (folder / "manifest.json").exists()
    tl.archive(tmp_path / "again", compress=True, delete=True)
    assert "_design/pref" not in get_all_design_docs(database=database)
    assert len(tl) == 0


def test_tokenset_over_100_chunks_with_srm_attachments(database):
    links = srmlist().from_file(str(SRM_50))
    handler = TokenHandler("pref", database=database)
    ts = TokenSet(th=handler, tok_config=str(CAL_PREF3))
    # size-1 chunks of the 51-link list, plus 49 synthetic ones: 100 chunks
    chunks = dict(slice_dicts(links.sbn_dict(), 1))
    chunks.update({str(200 + i): [f"srm://example/L229507_SB{200 + i}_x.tar"] for i in range(49)})
    assert len(chunks) == 100
    report = ts.create_dict_tokens(chunks, id_append="L229507", file_upload="srm.txt")
    assert len(report.created) == 100
    assert sorted(ts.tokens) == sorted(report.created)
    assert "pref_L229507_SB100" in ts.tokens
    doc = handler.store.get("pref_L229507_SB100")
    assert doc["STARTSB"] == "100" and doc["PIPELINE_STEP"] == "pref3_cal_CI"
    assert handler.get_attachment("pref_L229507_SB100", "srm.txt", savename=os.devnull)
    srm = handler.store.get_attachment("pref_L229507_SB100", "srm.txt").decode()
    assert srm.strip().endswith("L229507_SB100_uv.dppp.MS_3d78b8f1.tar")

    again = ts.create_dict_tokens(chunks, id_append="L229507", file_upload="srm.txt")
    assert not again.created and len(again.found) == 100

    assert len(ts.add_keys_to_list("NCPU", 4)) == 100
    assert handler.store.get("pref_L229507_SB120")["NCPU"] == 4
    assert len(ts.add_attach_to_list(str(CAL_PREF3), name="cal.json")) == 100
    assert "cal.json" in handler.list_attachments("pref_L229507_SB248")
    assert handler.counts() == {"todo": 100, "locked": 0, "done": 0, "error": 0, "total": 100}


def test_tokenset_needs_a_handler():
    with pytest.raises(LrtError, match="TokenHandler"):
        TokenSet()


def test_tokenhandler_views_reset_status_delete_attachments(database, tmp_path, monkeypatch):
    th = TokenHandler("pref", database)
    th.add_status_views()
    th.add_overview_view()
    assert {"todo", "locked", "done", "error", "overview_view"} <= set(th.load_views())
    assert set(th.views) == set(th.load_views())
    ts = TokenSet(th, {"Token": {"status": "queued"}, "Job": {"variables": {"OBSID": "L1"}}})
    ts.create_dict_tokens({str(i): [f"srm://x/L1_SB{i:03d}_a.tar"] for i in range(6)}, id_append="L1")
    ids = sorted(ts.tokens)
    assert [r["id"] for r in th.list_tokens_from_view("todo")] == ids
    with pytest.raises(LrtError, match="'missing' does not exist"):
        th.list_tokens_from_view("missing")

    th.store.set_fields(ids[:4], lock=1, done=2, output=1)
    th.store.set_fields(ids[:1], OBSID="L2")
    assert th.reset_tokens("error", key=["OBSID", "L2"]) == ids[:1]
    th.add_attachment(ids[1], io.BytesIO(b"log text"), "stdout.log")
    th.add_attachment(ids[1], io.BytesIO(b"parset"), "x.parset")
    assert th.list_attachments(ids[1]) == ["stdout.log", "x.parset"]
    assert sorted(th.reset_tokens("error", del_attach=True)) == ids[1:4]
    assert th.list_attachments(ids[1]) == ["x.parset"]

    monkeypatch.chdir(tmp_path)
    path = th.get_attachment(ids[1], "x.parset")
    assert path == tmp_path / "x.parset" and path.read_bytes() == b"parset"

    assert sorted(th.set_view_to_status("todo", "held")) == ids
    assert th.store.get(ids[0])["status"] == "held"
    th.store.set_fields(ids[:2], lock=1, done=2, output=0)
    assert sorted(th.set_view_to_status("done", "todo")) == ids[:2]
    assert th.counts()["todo"] == 6

    assert th.delete_tokens("todo", key=["OBSID", "L2"]) == ids[:1]
    archive = th.archive_tokens(folder=tmp_path)
    assert archive.exists()
    th.purge_tokens()
    assert all(th.store.get(i) is None for i in ids)
    assert "_design/pref" not in get_all_design_docs(database=database)


def test_tokenhandler_connects_with_classic_arguments(couchdb_server, database):
    user, password = couchdb_server.auth or (None, None)
    th = TokenHandler("pref", couchdb_server.url, user, password, database.database_name)
    th.add_status_views()
    assert th.counts()["total"] == 0


def test_module_functions(database):
    th = TokenHandler("pref", database=database)
    ts = TokenSet(th)
    ts.create_dict_tokens({"1": ["a"], "2": ["b"]}, id_append="L1")
    th.store.set_fields(ts.tokens, lock=1, done=1, output=2)
    assert "_design/pref" in get_all_design_docs(database=database)
    assert sorted(reset_all_tokens("pref", database=database)) == sorted(ts.tokens)
    assert th.counts()["todo"] == 2
    ids = ts.tokens
    purge_tokens("pref", database=database)
    assert "_design/pref" not in get_all_design_docs(database=database)
    assert all(th.store.get(i) is None for i in ids)
