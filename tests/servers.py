"""The CouchDB server the tests run against, chosen by the environment variable ``LRT_TEST_COUCHDB``.

* unset or ``embedded``: the project's embedded pouchdb-server, started for the session;
* ``apache``: a real Apache CouchDB 3.5 started for the session from a release tarball
  (``LRT_COUCHDB_TARBALL``, else ``../shared/couchdb/apache-couchdb-3.5.0-*.tar.gz`` next to
  the repository). Without the tarball the tests that need it are skipped, or fail under
  ``CI=true``;
* an ``http(s)://`` URL: your own server, with ``LRT_TEST_COUCHDB_USER`` and
  ``LRT_TEST_COUCHDB_PASSWORD`` naming an account that may create and delete databases
  and users (a server admin on CouchDB 3).

The Apache server is started by `ApacheCouchDB`, written here rather than by calling
the ``start.sh`` next to the tarball: that script takes the admin password as an
argument and hands it to ``curl -u``, so it would stand on two command lines, which
this project never allows. The password goes into a mode-600 ini file instead.
Nothing in this module prints a password: an `Account` shows it as ``***``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import requests

from lrt_workflow.couchdb.credentials import PicasCredentials
from lrt_workflow.couchdb.embedded import EmbeddedServer, free_port

ROOT = Path(__file__).resolve().parent.parent
KIND_VARIABLE = "LRT_TEST_COUCHDB"
TARBALL_VARIABLE = "LRT_COUCHDB_TARBALL"
USER_VARIABLE = "LRT_TEST_COUCHDB_USER"
PASSWORD_VARIABLE = "LRT_TEST_COUCHDB_PASSWORD"
FOLDER_PREFIX = "lrt-apache-couchdb."
TARBALL_PATTERN = "shared/couchdb/apache-couchdb-3.5.0-*.tar.gz"  # beside the checkout


def _checkouts() -> list[Path]:
    """This checkout and, when it is a git worktree, the main one, beside which ``shared`` is."""
    git = ROOT / ".git"
    if git.is_file():  # a worktree's .git says "gitdir: <main checkout>/.git/worktrees/<name>"
        return [ROOT, Path(git.read_text().split(":", 1)[1].strip()).parents[2]]
    return [ROOT]


DEFAULT_TARBALLS = [checkout.parent / TARBALL_PATTERN for checkout in _checkouts()]


class Unavailable(Exception):
    """The chosen server cannot be had here (the reason says what is missing)."""


@dataclass(frozen=True)
class Account:
    """A CouchDB user name and password; the password is never shown."""

    name: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Account({self.name!r}, password='***')"

    @property
    def auth(self) -> tuple[str, str]:
        return self.name, self.password

    def environment(self) -> dict[str, str]:
        """How the workflow and the ``lrt`` command are given these credentials."""
        return {"PICAS_USER": self.name, "PICAS_PASSWORD": self.password}


def kind() -> str:
    """``embedded``, ``apache`` or ``external``, from ``LRT_TEST_COUCHDB``."""
    value = os.environ.get(KIND_VARIABLE, "").strip() or "embedded"
    if value in ("embedded", "apache"):
        return value
    if value.startswith(("http://", "https://")):
        return "external"
    raise Unavailable(f"{KIND_VARIABLE}={value!r} is not 'embedded', 'apache' or an http(s):// URL")


def find_tarball() -> Path:
    """The Apache CouchDB release tarball, or `Unavailable` naming where it was looked for."""
    given = os.environ.get(TARBALL_VARIABLE)
    if given:
        if not Path(given).is_file():
            raise Unavailable(f"{TARBALL_VARIABLE}={given} is not a file")
        return Path(given)
    found = sorted(path for pattern in DEFAULT_TARBALLS for path in glob.glob(str(pattern)))
    if not found:
        raise Unavailable(f"no Apache CouchDB release tarball: set {TARBALL_VARIABLE}, or put one at "
                          + " or ".join(map(str, DEFAULT_TARBALLS)))
    return Path(found[-1])


_running: set["ApacheCouchDB"] = set()


@atexit.register
def _stop_all() -> None:
    """Whatever ends pytest short of a signal it cannot catch, no Apache CouchDB outlives it."""
    for server in list(_running):
        server.stop()


def _stop_with_parent() -> None:
    """In the child, before it execs: have the kernel send it SIGTERM when the thread that
    started it ends, however it ends (also SIGKILL). Linux only; elsewhere a no-op."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


class ApacheCouchDB:
    """A throw-away single-node Apache CouchDB from a release tarball, on loopback.

    ``start`` unpacks the release into a new temporary folder, configures one node
    on a free port with a server admin, starts it and waits until ``/_up``,
    ``/_users`` and ``/_replicator`` answer. ``stop`` ends that one process and
    deletes the folder. A stopped server can be started again on the same
    folder and port, with its data (for outage tests).
    """

    def __init__(self, tarball: Path, admin: Account, port: int | None = None):
        self.tarball = Path(tarball)
        self.admin = admin
        self.port = port or free_port()
        self.folder: Path | None = None
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def home(self) -> Path:
        return self.folder / "couchdb"

    @property
    def log_file(self) -> Path:
        return self.home / "couchdb.log"

    @staticmethod
    def _sweep() -> None:
        """Delete the folders of servers whose pytest was killed (SIGKILL leaves them behind;
        the server itself stopped with it). Each folder names the process that owns it."""
        for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
            with contextlib.suppress(OSError, ValueError):
                owner = int((folder / "owner.pid").read_text())
                if not Path(f"/proc/{owner}").exists():
                    shutil.rmtree(folder, ignore_errors=True)

    def _unpack(self) -> None:
        self._sweep()
        self.folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        (self.folder / "owner.pid").write_text(str(os.getpid()))
        subprocess.run(["tar", "xzf", str(self.tarball), "-C", str(self.folder)], check=True)
        if not (self.home / "bin" / "couchdb").is_file():
            raise RuntimeError(f"{self.tarball} holds no couchdb/bin/couchdb")
        # Appended last, so it overrides default.ini and local.ini. Mode 600: it holds the password.
        ini = self.home / "etc" / "local.d" / "zz-lrt-tests.ini"
        descriptor = os.open(ini, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(
                "[couchdb]\nsingle_node = true\n"
                f"uuid = {secrets.token_hex(16)}\n\n"
                f"[chttpd]\nbind_address = 127.0.0.1\nport = {self.port}\n\n"
                f"[chttpd_auth]\nsecret = {secrets.token_hex(16)}\n\n"
                f"[admins]\n{self.admin.name} = {self.admin.password}\n\n"
                f"[log]\nwriter = file\nfile = {self.log_file}\nlevel = warning\n"
            )
        # A lone node: its own node name and a private cookie, no epmd and no
        # distribution listener, so several can run side by side and none
        # leaves an epmd behind.
        vm_args = self.home / "etc" / "vm.args"
        text = vm_args.read_text()
        text = text.replace("-name couchdb@127.0.0.1", f"-name couchdb_{self.port}@127.0.0.1")
        text = text.replace("\n# -setcookie\n", f"\n-setcookie {secrets.token_hex(16)}\n")
        vm_args.write_text(text + "\n-start_epmd false\n-dist_listen false\n")

    def start(self, timeout: float = 60.0) -> "ApacheCouchDB":
        if self.folder is None:
            self._unpack()
        # bin/couchdb exec()s erlexec, which exec()s beam.smp: the child is the server itself.
        # HOME inside the folder, so nothing (an .erlang.cookie) is written elsewhere.
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith("PICAS") and k != PASSWORD_VARIABLE}
        # Tied to the main thread's life only: a server (re)started by a helper thread, as in
        # the outage test, must outlive that thread.
        in_main_thread = threading.current_thread() is threading.main_thread()
        with open(self.home / "couchdb.stdout", "ab") as output:
            self.process = subprocess.Popen(
                [str(self.home / "bin" / "couchdb")], cwd=self.home, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT, env={**environment, "HOME": str(self.home)},
                start_new_session=True, preexec_fn=_stop_with_parent if in_main_thread else None,
            )
        _running.add(self)
        deadline = time.monotonic() + timeout
        # /_users and /_replicator appear just after /_up turns 200 (single-node set-up).
        for path in ("_up", "_users", "_replicator"):
            while not self._answers(path):
                if self.process.poll() is not None:
                    self.process = None
                    raise RuntimeError(f"Apache CouchDB exited while starting; see {self.home}/couchdb.stdout:\n"
                                       + self._tail())
                if time.monotonic() > deadline:
                    self.stop(keep_folder=True)
                    raise RuntimeError(f"Apache CouchDB did not answer GET /{path} within {timeout:.0f} s:\n"
                                       + self._tail())
                time.sleep(0.1)
        return self

    def _answers(self, path: str) -> bool:
        try:
            return requests.get(self.url + path, auth=self.admin.auth, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.home / "couchdb.stdout").read_text(errors="replace").splitlines()[-lines:])
        return ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self, *, keep_folder: bool = False, timeout: float = 30.0) -> None:
        """Stop the server (SIGTERM: a clean stop, in about 3 s) and, unless asked not to, delete its folder."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        if not keep_folder and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
        if self.folder is None:
            _running.discard(self)


class TestServer:
    """The server the session's tests use: its URL and the means to set up users and databases on it.

    ``admin`` is None for the embedded server, which runs as an "admin party".
    ``url`` ends in ``/``, like the embedded server's.
    """

    __test__ = False  # not a test class, whatever its name

    def __init__(self, kind: str, url: str, admin: Account | None, pid: int | None = None):
        self.kind = kind
        self.url = url.rstrip("/") + "/"
        self.admin = admin
        self.pid = pid
        self.session = requests.Session()
        if admin:
            self.session.auth = admin.auth

    def __repr__(self) -> str:
        return f"TestServer({self.kind!r}, {self.url!r}, admin={self.admin!r})"

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.url).port

    @property
    def auth(self) -> tuple[str, str] | None:
        return self.admin.auth if self.admin else None

    def environment(self, account: Account | None = None) -> dict[str, str]:
        """PICAS_USER and PICAS_PASSWORD for ``account`` (the admin by default); none for an admin party."""
        account = account or self.admin
        return account.environment() if account else {}

    def credentials(self, account: Account | None = None, database: str | None = None) -> PicasCredentials:
        account = account or self.admin
        return PicasCredentials(user=account.name if account else None, password=account.password if account else None,
                                url=self.url, database=database)

    def request(self, method: str, path: str, *, check: bool = True, **kwargs) -> requests.Response:
        """One request as the server admin."""
        response = self.session.request(method, self.url + path.lstrip("/"), timeout=60, **kwargs)
        if check:
            response.raise_for_status()
        return response

    def create_user(self, account: Account, roles: tuple[str, ...] = ()) -> None:
        """A non-admin user in ``_users`` (replaced if it exists)."""
        doc_id = f"org.couchdb.user:{account.name}"
        current = self.request("GET", f"_users/{doc_id}", check=False)
        doc = {"_id": doc_id, "name": account.name, "password": account.password, "roles": list(roles), "type": "user"}
        if current.status_code == 200:
            doc["_rev"] = current.json()["_rev"]
        self.request("PUT", f"_users/{doc_id}", json=doc)

    def delete_user(self, name: str) -> None:
        current = self.request("GET", f"_users/org.couchdb.user:{name}", check=False)
        if current.status_code == 200:
            self.request("DELETE", f"_users/org.couchdb.user:{name}", params={"rev": current.json()["_rev"]})

    def create_database(self, name: str, *, admins: tuple[str, ...] = (), members: tuple[str, ...] = ()) -> None:
        """A new database; with names, a ``_security`` object naming them.

        On CouchDB 3 an empty ``members`` list makes a database public, so a
        database with admins always lists them as members too.
        """
        self.request("PUT", name)
        if admins or members:
            security = {"admins": {"names": list(admins), "roles": []},
                        "members": {"names": sorted(set(admins) | set(members)), "roles": []}}
            self.request("PUT", f"{name}/_security", json=security)

    def delete_database(self, name: str) -> None:
        response = self.request("DELETE", name, check=False)
        if response.status_code not in (200, 202, 404):
            response.raise_for_status()

    def databases(self) -> list[str]:
        return [name for name in self.request("GET", "_all_dbs").json() if not name.startswith("_")]

    def documents(self, database: str, *, attachments: bool = False) -> list[dict] | None:
        """Every document of ``database`` but the design documents; None if there is no such database."""
        params = {"include_docs": "true"}
        if attachments:
            params["attachments"] = "true"
        response = self.request("GET", f"{database}/_all_docs", params=params, check=False)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return [row["doc"] for row in response.json()["rows"] if not row["id"].startswith("_design/")]


@contextlib.contextmanager
def session_server(tmp_path_factory):
    """The chosen server, running for the body; stopped afterwards however the body ends."""
    chosen = kind()
    if chosen == "embedded":
        embedded = EmbeddedServer(tmp_path_factory.mktemp("couchdb"))
        state, _ = embedded.start()
        try:
            yield TestServer("embedded", state.url, None, state.pid)
        finally:
            embedded.stop()
    elif chosen == "apache":
        apache = ApacheCouchDB(find_tarball(), Account("admin", "Admin-" + secrets.token_hex(12)))
        try:
            apache.start()
            yield TestServer("apache", apache.url, apache.admin, apache.pid)
        finally:
            apache.stop()
    else:
        url = os.environ[KIND_VARIABLE].strip()
        user, password = os.environ.get(USER_VARIABLE), os.environ.get(PASSWORD_VARIABLE)
        if not user or not password:
            raise Unavailable(f"{KIND_VARIABLE} names a server but {USER_VARIABLE} or {PASSWORD_VARIABLE} is not set")
        server = TestServer("external", url, Account(user, password))
        roles = server.request("GET", "_session").json().get("userCtx", {})
        if roles.get("name") != user:
            raise Unavailable(f"{url} did not accept the credentials of {USER_VARIABLE}={user}")
        if "_admin" not in roles.get("roles", []):
            raise Unavailable(f"{USER_VARIABLE}={user} is not a server admin of {url}: the tests create "
                              "databases and users")
        yield server


def unavailable(reason: str):
    """Skip, or fail under CI, where every server the run asks for must be there."""
    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CouchDB server unavailable under CI: {reason}", pytrace=False)
    pytest.skip(reason)
