"""Archive and restore, byte for byte, against a real embedded server."""

import json
import os
import tarfile

import pytest

from lrt_workflow.token import Token, TokenStore, archive_tokens, read_archive, restore, token_id
from lrt_workflow.archive import ArchiveError


@pytest.fixture
def filled(database):
    store = TokenStore(database, "pref", batch_size=7)
    store.ensure_design()
    tokens = [Token("pref", token_id("pref", "L9", i), OBSID="L9", STARTSB=f"{i:03d}") for i in range(20)]
    files = {
        t["_id"]: {"srm.txt": f"srm://{t['_id']}\n".encode(), "bin/data.bin": bytes(range(256)) + os.urandom(64)}
        for t in tokens
    }
    store.create(tokens, files)
    store.put_attachment(tokens[3]["_id"], "stdout.log", b"\x00\xffbinary log")
    store.set_fields([tokens[3]["_id"]], lock=10, done=11, output=0, times={"done": 11})
    return store


def snapshot(store):
    """Every token's fields (without _rev) and attachment bytes."""
    result = {}
    for doc in store.fetch(store.all_ids(), attachments=True):
        files = {name: meta["data"] for name, meta in doc.pop("_attachments", {}).items()}
        doc.pop("_rev")
        result[doc["_id"]] = (doc, files)
    return result


def test_archive_then_restore_round_trips_documents_and_attachments(filled, couchdb_client, tmp_path):
    before = snapshot(filled)
    path = archive_tokens(filled, tmp_path)
    assert path.name == "tokens_pref.tar.gz"
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert "pref/manifest.json" in names and "pref/tokens/pref_L9_SB003.json" in names
    assert "pref/attachments/pref_L9_SB003/bin%2Fdata.bin" in names

    filled.purge()
    assert filled.counts()["total"] == 0
    # restore into an empty database
    target_db = couchdb_client.create_database("restored_" + filled.db.database_name)
    try:
        target = TokenStore(target_db, "pref")
        report = restore(target, path)
        assert len(report.created) == 20
        assert snapshot(target) == before
        again = restore(target, path)
        assert len(again.found) == 20 and not again.created
    finally:
        couchdb_client.delete_database(target_db.database_name)


def test_folder_archive_and_manifest(filled, tmp_path):
    folder = archive_tokens(filled, tmp_path, compress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["token_type"] == "pref" and len(manifest["tokens"]) == 20
    entry = manifest["tokens"]["pref_L9_SB003"]
    assert set(entry["attachments"]) == {"srm.txt", "bin/data.bin", "stdout.log"}
    again, tokens = read_archive(folder)
    assert len(tokens) == 20


def test_tampered_archive_is_refused(filled, tmp_path):
    folder = archive_tokens(filled, tmp_path, compress=False)
    victim = folder / "tokens" / "pref_L9_SB001.json"
    victim.write_text(victim.read_text().replace("L9", "L8"))
    with pytest.raises(ArchiveError, match="does not match its checksum"):
        read_archive(folder)


def test_restore_refuses_another_type_and_garbage(filled, tmp_path, database):
    path = archive_tokens(filled, tmp_path)
    with pytest.raises(ArchiveError, match="type 'pref', not 'other'"):
        restore(TokenStore(database, "other"), path)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar")
    with pytest.raises(ArchiveError, match="cannot read token archive"):
        read_archive(junk)


def test_interrupted_archive_leaves_no_complete_looking_file(filled, tmp_path, monkeypatch):
    import lrt_workflow.archive as archive

    def broken(*args, **kwargs):
        yield "pref/tokens/x.json", b"{}"
        raise RuntimeError("connection lost")

    monkeypatch.setattr(archive, "_entries", broken)
    with pytest.raises(RuntimeError):
        archive_tokens(filled, tmp_path)
    assert not (tmp_path / "tokens_pref.tar.gz").exists()
