import logging
import os

import pytest
import yaml

from lrt_workflow.couchdb.credentials import (
    PicasCredentials,
    get_picas_cred,
    load_credentials,
    picas_cred,
    read_picasrc,
    redact_url,
)
from lrt_workflow.errors import CredentialsError

SECRET = "s3cr3t-Pa55"


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """Keep the developer's own ~/.picasrc out of these tests."""
    monkeypatch.setenv("HOME", str(tmp_path))


def write_rc(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_each_field_comes_from_the_first_source_that_has_it(tmp_path):
    rc = write_rc(tmp_path / "picasrc", "user=rc-user\npassword=rc-pass\ndatabase=rc-db\nurl=https://rc.example/\n")
    environ = {"PICAS_PASSWORD": "env-pass", "PICAS_DATABASE": "env-db"}
    config = {"url": "https://config.example/", "database": "config-db", "user": "config-user"}
    creds = load_credentials(database="arg-db", picasrc=rc, config=config, environ=environ)
    assert creds.database == "arg-db"
    assert creds.password == "env-pass"
    assert creds.user == "rc-user"
    assert creds.url == "https://rc.example/"


def test_config_fills_what_no_other_source_has(tmp_path):
    creds = load_credentials(
        picasrc=write_rc(tmp_path / "rc", "user=u\n"),
        config={"url": "https://picas.example:6984/", "database": "lofar"},
        environ={},
    )
    assert (creds.user, creds.url, creds.database) == ("u", "https://picas.example:6984/", "lofar")


def test_default_picasrc_is_read_from_home_and_skipped_when_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_credentials(environ={}).user is None
    write_rc(tmp_path / ".picasrc", "# comment\n\nPICAS_USER = 'quoted'\n")
    assert load_credentials(environ={}).user == "quoted"


def test_picasrc_named_by_environment(tmp_path):
    rc = write_rc(tmp_path / "other", "database=from-env-file\n")
    assert load_credentials(environ={"PICASRC": str(rc)}).database == "from-env-file"


def test_named_picasrc_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(CredentialsError, match="does not exist"):
        load_credentials(picasrc=tmp_path / "missing", environ={})


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_credentials_file_readable_by_others_is_refused(tmp_path, mode):
    rc = write_rc(tmp_path / "picasrc", f"password={SECRET}\n", mode)
    with pytest.raises(CredentialsError) as error:
        read_picasrc(rc)
    message = str(error.value)
    assert f"chmod 600 {rc}" in message
    assert f"{mode:04o}" in message
    assert SECRET not in message


def test_private_credentials_file_is_accepted(tmp_path):
    rc = write_rc(tmp_path / "picasrc", f"user=alice\npassword={SECRET}\n", 0o400)
    assert read_picasrc(rc).password == SECRET


def test_malformed_line_is_reported_without_echoing_it(tmp_path):
    rc = write_rc(tmp_path / "picasrc", f"user=alice\n{SECRET}\n")
    with pytest.raises(CredentialsError, match="line 2") as error:
        read_picasrc(rc)
    assert SECRET not in str(error.value)


def test_password_in_config_is_refused():
    with pytest.raises(CredentialsError, match="PICAS_PASSWORD") as error:
        load_credentials(config={"password": SECRET}, environ={}, picasrc=None)
    assert SECRET not in str(error.value)


def test_password_never_shows_in_repr_str_format_or_logs(caplog):
    creds = PicasCredentials(user="alice", password=SECRET, database="db", url=f"https://alice:{SECRET}@host/")
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}", repr([creds]), repr({"c": creds})):
        assert SECRET not in text
        assert "alice" in text
    logger = logging.getLogger("lrt_workflow.test")
    with caplog.at_level(logging.DEBUG):
        logger.info("connecting with %s", creds)
        logger.info("connecting with %r", creds)
    assert "connecting with" in caplog.text
    assert SECRET not in caplog.text


def test_repr_says_whether_a_password_is_set():
    assert "password='***'" in repr(PicasCredentials(password=SECRET))
    assert "password=None" in repr(PicasCredentials())


@pytest.mark.parametrize(
    "url, expected",
    [
        (f"https://alice:{SECRET}@picas.example:6984/db", "https://alice:***@picas.example:6984/db"),
        ("https://alice@picas.example/", "https://alice@picas.example/"),
        ("http://127.0.0.1:5984/", "http://127.0.0.1:5984/"),
        (None, None),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_classic_names():
    assert picas_cred is PicasCredentials
    assert get_picas_cred(user="u", password="p", environ={}, picasrc=None).user == "u"


def picas_conf(home, **settings):
    """The settings file picas-cli init writes, with its password encrypted as picas does."""
    from cryptography.fernet import Fernet

    folder = home / ".config" / "picas"
    folder.mkdir(parents=True)
    key = Fernet.generate_key()
    (folder / "key.dat").write_bytes(key)
    password = settings.pop("password", None)
    if password:
        settings["encrypted_password"] = Fernet(key).encrypt(password.encode()).decode()
    (folder / "conf.yml").write_text(yaml.safe_dump(settings))


def test_the_picas_clients_settings_are_read_after_ours(tmp_path):
    pytest.importorskip("cryptography")
    picas_conf(tmp_path, host_url="https://picas.example:6984", database="picasdb", username="ann", password="s3cret")
    environ = {"HOME": str(tmp_path)}
    found = load_credentials(environ=environ)
    assert (found.url, found.database, found.user, found.password) == (
        "https://picas.example:6984", "picasdb", "ann", "s3cret")
    # the project's configuration comes first; the picas user and password are for the picas server only
    embedded = load_credentials(environ=environ, config={"url": "embedded", "database": "lrt"})
    assert (embedded.url, embedded.database, embedded.user, embedded.password) == ("embedded", "lrt", None, None)
    same = load_credentials(environ=environ, config={"url": "https://picas.example:6984/", "database": "lrt"})
    assert (same.database, same.user, same.password) == ("lrt", "ann", "s3cret")
    assert "s3cret" not in repr(same)
    # the environment still wins over it
    assert load_credentials(environ={**environ, "PICAS_PASSWORD": "other"}).password == "other"
