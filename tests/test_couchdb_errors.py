"""Typed errors from real servers: unreachable, refused, missing, conflict."""

import pytest

from lrt_workflow.couchdb import (
    AuthenticationFailed,
    DatabaseMissing,
    ServerUnreachable,
    UpdateConflict,
    connect,
    open_database,
)
from lrt_workflow.couchdb.credentials import PicasCredentials
from lrt_workflow.couchdb.embedded import free_port
from lrt_workflow.token import TokenStore

SECRET = "Very-Secret-99"


def test_unreachable_server_names_the_url_without_password():
    port = free_port()
    creds = PicasCredentials(user="alice", password=SECRET, url=f"http://alice:{SECRET}@127.0.0.1:{port}/")
    with pytest.raises(ServerUnreachable) as error:
        connect(creds, retries=1)
    message = str(error.value)
    assert f"127.0.0.1:{port}" in message
    assert SECRET not in message and SECRET not in repr(error.value)


def test_missing_database(couchdb_client):
    with pytest.raises(DatabaseMissing, match="'no_such_db' does not exist"):
        open_database(couchdb_client, "no_such_db")


def test_open_database_creates_when_asked(couchdb_client):
    db = open_database(couchdb_client, "made_here", create=True)
    try:
        assert db.exists()
        assert open_database(couchdb_client, "made_here", create=True).exists()
    finally:
        couchdb_client.delete_database("made_here")


def test_update_conflict(database):
    store = TokenStore(database, "pref")
    store.save({"_id": "a", "type": "pref"})
    with pytest.raises(UpdateConflict, match="token a changed"):
        store.save({"_id": "a", "type": "pref"})
    assert store.get("a")["type"] == "pref"


def test_view_of_missing_design_is_a_clear_error(database):
    with pytest.raises(DatabaseMissing, match="_design/pref"):
        TokenStore(database, "pref").counts()


def test_wrong_password_is_refused_clearly(secured_server):
    url, user, password = secured_server
    with pytest.raises(AuthenticationFailed, match="refused") as error:
        connect(PicasCredentials(user=user, password="wrong-" + password, url=url))
    assert password not in str(error.value)


def test_unauthenticated_access_is_refused_clearly(secured_server):
    url, _, _ = secured_server
    client = connect(PicasCredentials(url=url))
    with pytest.raises(AuthenticationFailed, match="refused"):
        open_database(client, secured_server.database)


def test_unauthenticated_bulk_write_is_refused_clearly(secured_server, couchdb_client):
    url, user, password = secured_server
    from cloudant.database import CouchDatabase

    anonymous = CouchDatabase(connect(PicasCredentials(url=url)), secured_server.database)
    with pytest.raises(AuthenticationFailed):
        TokenStore(anonymous, "pref").create([{"_id": "pref_L1_SB000", "type": "pref"}])


def test_right_password_is_accepted(secured_server):
    url, user, password = secured_server
    client = connect(PicasCredentials(user=user, password=password, url=url))
    store = TokenStore(open_database(client, secured_server.database), "pref")
    store.ensure_design()
    assert store.counts()["total"] == 0


def test_tls_verification_is_on_unless_turned_off_explicitly_with_a_warning():
    url = f"https://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnreachable, match="127.0.0.1"):
        connect(PicasCredentials(url=url), retries=0)
    with pytest.warns(UserWarning, match="TLS certificate verification is off"):
        with pytest.raises(ServerUnreachable):
            connect(PicasCredentials(url=url), verify_tls=False, retries=0)


def test_verify_tls_setting_reaches_the_session(couchdb_server, monkeypatch, tmp_path):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert connect(couchdb_server.credentials()).r_session.verify is True
    # The environment is read once, when connecting (not on every request): a CA bundle it names is kept.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    session = connect(couchdb_server.credentials()).r_session
    assert (session.verify, session.trust_env) == (str(tmp_path / "ca.pem"), False)
