"""The choice of test server itself (tests/servers.py): what happens when the chosen server is
missing, and that an Apache CouchDB started for the tests keeps its password off every command
line and leaves nothing behind."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import servers
from servers import Account, ApacheCouchDB

ROOT = Path(__file__).resolve().parent.parent
ONE_TEST = "tests/test_couchdb_errors.py::test_missing_database"


def pytest_run(tmp_path, **environment) -> subprocess.CompletedProcess:
    """One CouchDB-facing test in a pytest of its own, with ``environment`` for the server choice."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRT_TEST_COUCHDB") and k not in ("CI",)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", ONE_TEST],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env={**env, **environment})


def test_apache_without_its_tarball_is_skipped_naming_what_is_missing(tmp_path):
    missing = tmp_path / "apache-couchdb.tar.gz"
    result = pytest_run(tmp_path, LRT_TEST_COUCHDB="apache", LRT_COUCHDB_TARBALL=str(missing))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 skipped" in result.stdout and f"LRT_COUCHDB_TARBALL={missing} is not a file" in result.stdout


def test_apache_without_its_tarball_fails_under_ci(tmp_path):
    missing = tmp_path / "apache-couchdb.tar.gz"
    result = pytest_run(tmp_path, LRT_TEST_COUCHDB="apache", LRT_COUCHDB_TARBALL=str(missing), CI="true")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "1 error" in result.stdout and "CouchDB server unavailable under CI" in result.stdout


def test_a_url_without_credentials_is_skipped_and_a_misspelt_choice_stops_the_run(tmp_path):
    result = pytest_run(tmp_path, LRT_TEST_COUCHDB="https://couchdb.example.org:6984")
    assert result.returncode == 0 and "LRT_TEST_COUCHDB_USER or LRT_TEST_COUCHDB_PASSWORD is not set" in result.stdout
    result = pytest_run(tmp_path, LRT_TEST_COUCHDB="apachee")
    assert result.returncode == 4 and "'apachee' is not 'embedded', 'apache'" in result.stderr


def test_accounts_and_servers_never_show_a_password():
    account = Account("alice", "Pw-" + secrets.token_hex(8))
    server = servers.TestServer("external", "https://couchdb.example.org:6984", account)
    for text in (repr(account), str(account), repr(server), repr(server.credentials())):
        assert account.password not in text and "alice" in text


@pytest.fixture
def tarball():
    try:
        return servers.find_tarball()
    except servers.Unavailable as missing:
        servers.unavailable(str(missing))


def command_lines() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return found


def processes_in(folder: Path) -> list[int]:
    """Processes whose program or working folder is inside ``folder`` (also once it is deleted)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            for link in ("exe", "cwd"):
                try:
                    target = os.readlink(entry / link).removesuffix(" (deleted)")
                except OSError:
                    continue
                if target == str(folder) or target.startswith(f"{folder}/"):
                    found.append(int(entry.name))
                    break
    return found


@pytest.mark.slow
def test_apache_starts_with_its_password_off_every_command_line_and_stops_without_a_trace(tarball):
    admin = Account("admin", "Adm-" + secrets.token_hex(12))
    apache = ApacheCouchDB(tarball, admin)
    try:
        apache.start()
        pid, folder = apache.pid, apache.folder
        assert requests.get(apache.url + "_session", auth=admin.auth, timeout=10).json()["userCtx"]["roles"] == ["_admin"]
        assert requests.get(apache.url + "_all_dbs", timeout=10).status_code == 401, "no admin party"
        assert Path(f"/proc/{pid}/exe").resolve().name == "beam.smp"
        assert not [line for line in command_lines() if admin.password in line]
        assert oct((apache.home / "etc" / "local.d" / "zz-lrt-tests.ini").stat().st_mode & 0o777) == "0o600"
        # a view query, so that the server runs its JavaScript engine too
        requests.put(apache.url + "db", auth=admin.auth, timeout=10).raise_for_status()
        view = {"views": {"all": {"map": "function (doc) { emit(doc._id, 1); }", "reduce": "_sum"}}}
        requests.put(apache.url + "db/_design/d", json=view, auth=admin.auth, timeout=10).raise_for_status()
        requests.get(apache.url + "db/_design/d/_view/all", auth=admin.auth, timeout=30).raise_for_status()
        assert len(processes_in(folder)) >= 2, "the server and its JavaScript engine"
    finally:
        apache.stop()
    assert not Path(f"/proc/{pid}").exists(), "the server is still running"
    assert not folder.exists(), "its folder is left behind"
    assert processes_in(folder) == [], "processes of the server are left behind"


@pytest.mark.slow
def test_apache_stops_with_the_process_that_started_it_even_when_that_is_killed(tarball, tmp_path):
    script = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import servers\n"
        "apache = servers.ApacheCouchDB(servers.find_tarball(), servers.Account('admin', 'Adm-killed-1')).start()\n"
        "print(apache.pid, apache.folder, flush=True); time.sleep(120)\n"
    )
    starter = subprocess.Popen([sys.executable, "-c", script, str(ROOT / "tests")], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "LRT_COUCHDB_TARBALL": str(tarball)})
    try:
        pid, folder = starter.stdout.readline().split()
    finally:
        starter.kill()  # SIGKILL: no finalizer, no atexit
        starter.wait()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists(), "the server outlived the process that started it"
    ApacheCouchDB._sweep()  # what the next start does first
    assert not Path(folder).exists(), "the folder of a server whose owner was killed is not cleaned up"
