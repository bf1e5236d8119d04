"""Shared fixtures: one real CouchDB server per test session, one fresh database per test.

Which server is chosen by ``LRT_TEST_COUCHDB`` (see ``tests/servers.py``): the embedded
pouchdb-server by default, a real Apache CouchDB 3.5 with ``apache``, or your own
server with a URL. The fixtures mean the same on each:

* ``couchdb_server``: the server, as a `servers.TestServer` (``url``, ``port``, ``admin``, ...);
* ``couchdb_client`` / ``database``: a client as the server admin, and a new database per test;
* ``secured_server``: (url, user, password) of a server with a database, ``.database``, that
  only that user may use. On the embedded server the user is a server admin, elsewhere the
  usual PiCaS account: a non-admin user who is admin of that database;
* ``workflow_couchdb``: where one workflow run keeps its tokens (`WorkflowCouchDB`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import secrets
import signal
from pathlib import Path

import pytest
import requests
import servers
from servers import Account, TestServer

from lrt_workflow.couchdb import connect
from lrt_workflow.couchdb.embedded import EmbeddedServer

_database_numbers = itertools.count()


def pytest_configure(config):
    """A misspelt LRT_TEST_COUCHDB stops the run instead of quietly skipping every CouchDB test.

    And SIGTERM (a CI job cancelled or timed out) ends the session the way Ctrl-C does, so the
    fixtures' finalizers still stop every server they started.

    A session started in the background by a shell (``make test &``, ``nohup``) inherits SIGINT
    ignored, and so would every Snakemake and pilot it starts: the tests that press Ctrl-C would
    wait for runs that cannot hear it. A handler of our own is reset to the default in children."""
    try:
        servers.kind()
    except servers.Unavailable as wrong:
        raise pytest.UsageError(str(wrong)) from None
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _terminated(signum, frame):
    pytest.exit("stopped by SIGTERM", returncode=128 + signum)


def database_name(request, prefix: str = "t") -> str:
    """A database name of this test's own (CouchDB's rule: lower case, starting with a letter)."""
    slug = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:60]
    return f"{prefix}{next(_database_numbers):04d}_{slug}"


@pytest.fixture(scope="session")
def couchdb_server(tmp_path_factory) -> TestServer:
    """The session's CouchDB server, stopped at the end of the session however it ends."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(servers.session_server(tmp_path_factory))
        except servers.Unavailable as missing:
            servers.unavailable(str(missing))
        yield server


@pytest.fixture(scope="session")
def couchdb_client(couchdb_server):
    """A client of the session's server, as its admin."""
    client = connect(couchdb_server.credentials())
    yield client
    client.disconnect()


@pytest.fixture
def database(couchdb_client, request):
    """A new, empty database for this test, deleted afterwards."""
    name = database_name(request)
    db = couchdb_client.create_database(name, throw_on_exists=True)
    yield db
    couchdb_client.delete_database(name)


# --- users: the accounts PiCaS users have ---------------------------------------------------------------


@pytest.fixture(scope="session")
def couchdb_accounts(couchdb_server):
    """Non-admin users on the session's server, made on first use and removed at the end.

    ``accounts("picas")`` is the usual PiCaS account (made admin of its databases by the
    fixtures that make them); ``accounts("member")`` one that is only ever a member.
    On your own server the names carry a random part, so they meet no real user.
    """
    if couchdb_server.admin is None:
        pytest.skip("the embedded server runs as an admin party: it has no users to play roles")
    made: dict[str, Account] = {}
    suffix = "" if couchdb_server.kind == "apache" else "-lrt-test-" + secrets.token_hex(3)

    def account(role: str) -> Account:
        if role not in made:
            made[role] = Account(f"{role}{suffix}", f"Pw-{role}-" + secrets.token_hex(10))
            couchdb_server.create_user(made[role])
        return made[role]

    yield account
    for account in made.values():
        couchdb_server.delete_user(account.name)


class SecuredServer(tuple):
    """(url, user, password) as the tests unpack it, plus the ``database`` that user may use.
    It shows itself without the password."""

    def __new__(cls, url: str, user: str, password: str, database: str):
        self = super().__new__(cls, (url, user, password))
        self.database = database
        return self

    def __repr__(self) -> str:
        return f"SecuredServer({self[0]!r}, {self[1]!r}, '***', database={self.database!r})"


@pytest.fixture(scope="session")
def secured_server(request, tmp_path_factory):
    """A server that requires a password, with a database only one user may read and write.

    Embedded: a second pouchdb-server with a server admin and a database ``secured``.
    Elsewhere: the session's server, the PiCaS account named admin (and member) in the
    ``_security`` of a database of its own; the server admin is never used by the tests."""
    if servers.kind() != "embedded":
        server = request.getfixturevalue("couchdb_server")
        account = request.getfixturevalue("couchdb_accounts")("picas")
        name = "secured" if server.kind == "apache" else "lrt_test_secured_" + secrets.token_hex(4)
        server.create_database(name, admins=(account.name,))
        try:
            yield SecuredServer(server.url.rstrip("/"), account.name, account.password, name)
        finally:
            server.delete_database(name)
        return

    user, password = "picas-admin", "Pw-" + secrets.token_hex(8)
    server = EmbeddedServer(tmp_path_factory.mktemp("couchdb-secured"))
    state, _ = server.start()
    try:
        url = state.url.rstrip("/")
        requests.put(f"{url}/_config/admins/{user}", data=json.dumps(password)).raise_for_status()
        auth = (user, password)
        requests.put(f"{url}/secured", auth=auth).raise_for_status()
        security = {"admins": {"names": [user]}, "members": {"names": [user]}}
        requests.put(f"{url}/secured/_security", json=security, auth=auth).raise_for_status()
        yield SecuredServer(url, user, password, "secured")
    finally:
        server.stop()


# --- where a workflow run keeps its tokens --------------------------------------------------------------


class WorkflowCouchDB:
    """The CouchDB a test's workflow run uses, and how the test looks into it afterwards.

    Embedded: the run starts its own server in the project folder (``couchdb.url:
    embedded``, the shipped default), exactly as a user's run does; ``config`` is empty.
    Elsewhere: ``config`` names the session's server and this test's database (never a
    password), and ``environment`` gives the run the credentials of ``account``, as
    PICAS_USER and PICAS_PASSWORD. The test itself looks as the server admin.
    """

    def __init__(self, server: TestServer | None, database: str = "lrt", account: Account | None = None):
        self.server = server
        self.database = database
        self.account = account

    @property
    def embedded(self) -> bool:
        return self.server is None

    @property
    def config(self) -> dict:
        """What goes into config.yaml's ``couchdb`` section."""
        return {} if self.embedded else {"url": self.server.url, "database": self.database}

    @property
    def environment(self) -> dict:
        return self.account.environment() if self.account else {}

    @property
    def auth(self) -> tuple[str, str] | None:
        """Credentials for the test's own requests (the server admin's)."""
        return None if self.embedded else self.server.auth

    @staticmethod
    def _embedded_server(folder: Path) -> EmbeddedServer:
        return EmbeddedServer(folder / ".lrt" / "couchdb")

    def url(self, folder: Path) -> str:
        """The server's URL, ending in ``/``. Embedded: the folder's server, which must be running."""
        if self.embedded:
            return json.loads((folder / ".lrt" / "couchdb" / "server.json").read_text())["url"]
        return self.server.url

    def under_way(self, folder: Path) -> bool:
        """The run has got going: its embedded server answers, or its srm list was read."""
        if self.embedded:
            return (folder / ".lrt" / "couchdb" / "server.json").exists()
        return any(folder.glob("results/*/summary.json"))

    def stopped(self, folder: Path) -> bool:
        """No embedded server of the folder runs (elsewhere: none was even started)."""
        if self.embedded:
            return self._embedded_server(folder).running() is None
        return not (folder / ".lrt" / "couchdb").exists()

    @contextlib.contextmanager
    def serving(self, folder: Path, start: bool = True):
        """The server's URL for the body; the folder's embedded server is started for it (when asked),
        and stopped afterwards if it was not running."""
        if not self.embedded:
            yield self.server.url
            return
        server = self._embedded_server(folder)
        if not start:
            yield self.url(folder)
            return
        state, started = server.start()
        try:
            yield state.url
        finally:
            if started:
                server.stop()

    def tokens(self, folder: Path, *, start: bool = True, attachments: bool = False) -> list[dict] | None:
        """Every document in the database but design documents; None if there is no database.
        ``start``: start the folder's embedded server for the look if it is not running."""
        with self.serving(folder, start) as url:
            params = {"include_docs": "true", **({"attachments": "true"} if attachments else {})}
            response = requests.get(f"{url}{self.database}/_all_docs", params=params, auth=self.auth, timeout=30)
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return [row["doc"] for row in response.json()["rows"] if not row["id"].startswith("_design/")]

    def untouched(self, folder: Path) -> bool:
        """Nothing reached the database: a run's own embedded server has no such database; a
        database made for the test holds no document at all, not even a design document."""
        with self.serving(folder, True) as url:
            response = requests.get(f"{url}{self.database}/_all_docs", auth=self.auth, timeout=30)
        if response.status_code == 404:
            return True
        response.raise_for_status()
        return not self.embedded and response.json()["rows"] == []

    def existing_databases(self) -> list[str]:
        """The databases there are now, before a run (none for a run's own embedded server, which is
        not started for the look)."""
        return [] if self.embedded else self.server.databases()

    def databases(self, folder: Path, before: list[str] = ()) -> list[str]:
        """The databases (not system ones) on the server that are not in ``before``."""
        with self.serving(folder, True) as url:
            names = requests.get(f"{url}_all_dbs", auth=self.auth, timeout=30).json()
        return [name for name in names if not name.startswith("_") and name not in before]


@pytest.fixture
def workflow_couchdb_for(request):
    """Makes `WorkflowCouchDB`s: ``make(role, create=True)``.

    ``role`` is who the run is: ``"picas"``, the usual PiCaS account (a non-admin user,
    admin of the database); ``"member"``, a user only named in ``members``;
    ``"server-admin"``. The database is made for it (by the server admin, with the
    ``_security`` the role needs) unless ``create=False``. On the embedded server every
    role is the same: it runs as an admin party. Databases made here are deleted afterwards.
    """
    made: list[tuple[TestServer, str]] = []

    def make(role: str = "picas", *, create: bool = True) -> WorkflowCouchDB:
        if servers.kind() == "embedded":
            return WorkflowCouchDB(None)
        server: TestServer = request.getfixturevalue("couchdb_server")
        name = database_name(request, prefix="w")
        if role == "server-admin":
            account = server.admin
            security = {}
        else:
            account = request.getfixturevalue("couchdb_accounts")(role)
            security = {"members": (account.name,)} if role == "member" else {"admins": (account.name,)}
        if create:
            server.create_database(name, **security)
        made.append((server, name))
        return WorkflowCouchDB(server, name, account)

    yield make
    for server, name in made:
        server.delete_database(name)


@pytest.fixture
def workflow_couchdb(workflow_couchdb_for) -> WorkflowCouchDB:
    """Where this test's workflow run keeps its tokens, run as the usual PiCaS account."""
    return workflow_couchdb_for()


@pytest.fixture
def runs(tmp_path):
    """Starts the test's Snakemake and ``lrt`` runs (`project.Runs`). When the test ends, however it ends,
    every run still going is killed with its jobs, and every embedded server under ``tmp_path`` stopped."""
    from project import Runs

    started = Runs()
    yield started
    started.kill_all()
    for state in tmp_path.rglob(".lrt/couchdb/server.json"):
        EmbeddedServer(state.parent).stop()


@pytest.fixture
def lrt_worker(couchdb_server, database, tmp_path):
    """Starts ``lrt worker`` pilots on the test's database (``url``/``database_name`` name others), the
    server's credentials in their environment, never on their command line. Each runs in a session of
    its own, and is killed with its job when the test ends. They run in ``tmp_path``, where there is no
    config.yaml (an ``lrt`` command reads ./config.yaml: in the repository, the user's own), with no
    PiCaS setting of ours."""
    import subprocess
    import sys

    from project import clean_environment

    started = []

    def start(*extra: str, url: str | None = None, database_name: str | None = None, env: dict | None = None):
        process = subprocess.Popen(
            [sys.executable, "-m", "lrt_workflow", "worker", "--url", url or couchdb_server.url,
             "--database", database_name or database.database_name, *extra],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
            env=clean_environment(tmp_path, **{**couchdb_server.environment(), **(env or {})}))
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
