"""The password never leaks, and credentials are refused clearly when they are wrong, missing or unsafe.

The real Snakemake workflow runs against `secured_server` (a server with a
database only one user may use: on the embedded server its admin, elsewhere the
usual PiCaS account, admin of that database only), with the user and password
given only through the environment of the Snakemake process. While the pilots
run, every process's command line (and every job's environment) is searched;
afterwards every file of the project folder, every member of the token
archive, every token document with its attachments, and Snakemake's output.

Each run uses a token type of its own: the secured server is shared by the
whole test session, and token ids (``<type>_<OBSID>_SB<n>``) are deterministic.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import select
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
import requests

import project
from lrt_workflow.couchdb import ServerUnreachable, connect
from lrt_workflow.couchdb.credentials import PicasCredentials
from lrt_workflow.couchdb.target import resolve
from project import OBSID

JOB_SLEEP = "2.07"  # a marker too: the jobs are the processes whose command line holds "sleep 2.07"
# The job prints its whole environment into stdout.log, which is attached to its token and archived.
JOB = f'sleep {JOB_SLEEP}; env; bash "$JOBSCRIPT"'


# --- helpers -------------------------------------------------------------------------------------------


@pytest.fixture
def token_type(secured_server):
    """A token type of this test's own; its documents are deleted afterwards, so that a test that
    finds a leak leaves no password behind in the database the whole session shares."""
    url, user, password = secured_server
    name = "sec" + secrets.token_hex(4)
    yield name
    database = secured_server.database
    rows = requests.get(f"{url}/{database}/_all_docs", auth=(user, password), timeout=60).json()["rows"]
    mine = [{"_id": row["id"], "_rev": row["value"]["rev"], "_deleted": True} for row in rows
            if row["id"].startswith(f"{name}_") or row["id"] == f"_design/{name}"]
    if mine:
        requests.post(f"{url}/{database}/_bulk_docs", json={"docs": mine}, auth=(user, password),
                      timeout=60).raise_for_status()


def write_project(folder: Path, secured_server, token_type: str) -> Path:
    """An observation of 20 subbands (two tokens of 10) in the secured server's database; no password
    anywhere in the folder. The job shows its environment (`JOB`), then runs the demo job script."""
    url, _, _ = secured_server
    project.one_step(folder, subbands=20, couchdb={"url": url, "database": secured_server.database},
                     token={"type": token_type, "command": JOB})
    return folder


def run_snakemake(runs, folder: Path, output: Path, env: dict, timeout: float = 300) -> tuple[int, str]:
    """Snakemake in ``folder`` with ``env`` (and no PiCaS setting of the developer's, and the project
    folder as HOME, without ~/.picasrc); its output goes to ``output``, outside the project."""
    finished = runs.finish(runs.start_snakemake(folder, env=env, output=output), check=False, timeout=timeout)
    return finished.returncode, finished.stdout


def environ_of(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None


def files_holding(folder: Path, secret: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and secret.encode() in p.read_bytes()]


def documents_of(url: str, auth: tuple[str, str], token_type: str, database: str) -> list[dict]:
    """Every document of this token type in ``database``, with its attachments inline (base64)."""
    rows = requests.get(f"{url}/{database}/_all_docs", params={"include_docs": "true", "attachments": "true"},
                        auth=auth, timeout=60).json()["rows"]
    return [row["doc"] for row in rows
            if row["id"].startswith(f"{token_type}_") or row["id"] == f"_design/{token_type}"]


def ids_of(url: str, auth: tuple[str, str], token_type: str, database: str) -> list[str]:
    rows = requests.get(f"{url}/{database}/_all_docs", auth=auth, timeout=60).json()["rows"]
    return [row["id"] for row in rows if token_type in row["id"]]


def attachment_texts(doc: dict) -> dict[str, bytes]:
    return {name: base64.b64decode(a["data"]) for name, a in doc.get("_attachments", {}).items()}


# --- the run with the password in the environment -----------------------------------------------------


@pytest.mark.slow
def test_the_password_appears_nowhere_during_or_after_a_real_run(secured_server, token_type, tmp_path, runs):
    url, user, password = secured_server
    folder = write_project(tmp_path / "project", secured_server, token_type)
    run = runs.start_snakemake(folder, env={"PICAS_USER": user, "PICAS_PASSWORD": password},
                               output=tmp_path / "output" / "snakemake.out")

    pilots_seen, jobs_seen = set(), set()
    deadline = time.monotonic() + 300
    while run.poll() is None:
        assert time.monotonic() < deadline, "the run did not finish in time"
        for pid, command in project.processes():
            assert password not in command, f"the password is on the command line of pid {pid}: {command}"
            if "step pilot" in command:
                pilots_seen.add(pid)
            if f"sleep {JOB_SLEEP}" in command:
                environ = environ_of(pid)
                if environ is not None:
                    jobs_seen.add(pid)
                    assert password.encode() not in environ, f"job {pid} inherited the password"
                    assert b"PICAS_PASSWORD=" not in environ and b"PICAS_USER=" not in environ
        time.sleep(0.1)
    output = runs.finish(run, check=False).stdout
    assert run.returncode == 0, output[-5000:]
    assert len(pilots_seen) >= 2, "the pilots ran too briefly to be looked at"
    assert jobs_seen, "no job was caught running"
    assert password not in output, "the password is in Snakemake's output"

    # Every file of the project: results, logs, Snakemake's metadata and logs.
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.parts[-3:-1] == (".snakemake", "log") for p in files), "no Snakemake log to search"
    assert any(".snakemake" in p.parts and "metadata" in p.parts for p in files), "no Snakemake metadata to search"
    assert len([p for p in files if p.parent.name == "logs" and p.suffix == ".log"]) >= 8, "step logs missing"
    assert files_holding(folder, password) == []

    # Every member of the token archive.
    archive = folder / "results" / OBSID / f"tokens_{token_type}.tar.gz"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        names = [m.name for m in members]
        assert any(n.endswith("/stdout.log") for n in names) and any(n.endswith("/job.sh") for n in names), names
        for member in members:
            assert password.encode() not in tar.extractfile(member).read(), f"the password is in {member.name}"

    # Every token document and design document of this run, with every attachment.
    docs = documents_of(url, (user, password), token_type, secured_server.database)
    tokens = [d for d in docs if not d["_id"].startswith("_design/")]
    assert sorted(d["_id"] for d in tokens) == [f"{token_type}_{OBSID}_SB100", f"{token_type}_{OBSID}_SB110"]
    assert all(d["status"] == "done" for d in tokens)
    assert len(docs) == 3, "the design document is missing"
    for doc in docs:
        assert password not in json.dumps(doc), f"the password is in {doc['_id']}"
        for name, data in attachment_texts(doc).items():
            assert password.encode() not in data, f"the password is in attachment {name} of {doc['_id']}"
    job_environment = attachment_texts(tokens[0])["stdout.log"].decode()
    assert f"LRT_TOKEN_TYPE={token_type}" in job_environment, "the job's env output is not where it is searched"
    assert "SRMFILE=srm.txt" in job_environment, "the job was not given its token's keys"
    assert "PICAS_USER" not in job_environment and "PICAS_PASSWORD" not in job_environment


@pytest.mark.slow
def test_a_wrong_password_is_refused_clearly_without_showing_either_password(secured_server, token_type, tmp_path,
                                                                             runs):
    url, user, password = secured_server
    folder = write_project(tmp_path / "project", secured_server, token_type)
    # an unrelated wrong password, and one that holds the right one: neither shows
    for number, wrong in enumerate(("Wrong-" + secrets.token_hex(8), "Wrong-" + password)):
        code, output = run_snakemake(runs, folder, tmp_path / "output" / f"wrong-{number}.out",
                                     {"PICAS_USER": user, "PICAS_PASSWORD": wrong})

        assert code != 0
        assert "refused" in output and url in output and "PICAS_PASSWORD" in output, output[-4000:]
        assert wrong not in output and password not in output
        assert files_holding(folder, wrong) == [] and files_holding(folder, password) == []
        assert ids_of(url, (user, password), token_type, secured_server.database) == [], \
            "something was written with a refused password"


@pytest.mark.slow
def test_no_credentials_at_all_are_refused_clearly(secured_server, token_type, tmp_path, runs):
    url, user, password = secured_server
    folder = write_project(tmp_path / "project", secured_server, token_type)

    code, output = run_snakemake(runs, folder, tmp_path / "output" / "snakemake.out", {})

    assert code != 0
    assert "refused" in output and "PICAS_PASSWORD" in output, output[-4000:]
    assert password not in output
    assert ids_of(url, (user, password), token_type, secured_server.database) == []


# --- a picasrc file -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_picasrc_others_can_read_is_refused_and_a_private_one_is_used(secured_server, token_type, tmp_path, runs):
    """By the workflow and by an ``lrt`` command alike."""
    url, user, password = secured_server
    folder = write_project(tmp_path / "project", secured_server, token_type)
    rc = tmp_path / "picasrc"
    rc.write_text(f"# PiCaS\nuser={user}\npassword={password}\n")
    env = {"PICASRC": str(rc)}

    os.chmod(rc, 0o644)
    code, output = run_snakemake(runs, folder, tmp_path / "output" / "refused.out", env)
    assert code != 0
    assert f"{rc} holds a password but is accessible by group or others (mode 0644)" in output, output[-4000:]
    assert f"chmod 600 {rc}" in output
    assert password not in output
    assert ids_of(url, (user, password), token_type, secured_server.database) == []
    status = runs.lrt(folder, "status", env=env)
    assert status.returncode == 1 and f"chmod 600 {rc}" in status.stdout, status.stdout[-3000:]
    assert password not in status.stdout

    os.chmod(rc, 0o600)
    code, output = run_snakemake(runs, folder, tmp_path / "output" / "accepted.out", env)
    assert code == 0, output[-4000:]
    assert password not in output
    tokens = [d for d in documents_of(url, (user, password), token_type, secured_server.database)
              if not d["_id"].startswith("_design/")]
    assert len(tokens) == 2 and all(d["status"] == "done" for d in tokens)
    for doc in tokens:
        assert "PICASRC" not in attachment_texts(doc)["stdout.log"].decode(), "the job was told where the rc file is"
    assert files_holding(folder, password) == []
    status = runs.lrt(folder, "status", env=env)
    assert status.returncode == 0, status.stdout[-3000:]
    assert f"{token_type} ({OBSID}): todo=0 locked=0 done=2 error=0 total=2" in status.stdout, status.stdout
    assert password not in status.stdout


# --- a password written into the URL ------------------------------------------------------------------


@pytest.mark.slow
def test_a_password_inside_picas_url_is_not_handed_to_jobs(secured_server, token_type, tmp_path, runs):
    url, user, password = secured_server
    folder = write_project(tmp_path / "project", secured_server, token_type)
    with_password = url.replace("://", f"://{user}:{password}@", 1)

    code, output = run_snakemake(runs, folder, tmp_path / "output" / "snakemake.out", {"PICAS_URL": with_password})

    assert code == 0, output[-4000:]  # the credentials in the URL are used...
    assert password not in output
    docs = documents_of(url, (user, password), token_type, secured_server.database)
    assert len([d for d in docs if d.get("status") == "done"]) == 2
    for doc in docs:  # ...but never shown
        for name, data in attachment_texts(doc).items():
            assert password.encode() not in data, f"the password is in attachment {name} of {doc['_id']}"
    assert files_holding(folder, password) == []


# --- TLS ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_https_to_a_closed_port_is_unreachable_and_named_without_the_password():
    port = free_port()
    password = "Pw-" + secrets.token_hex(8)
    credentials = PicasCredentials(url=f"https://alice:{password}@127.0.0.1:{port}/", database="secured")

    with pytest.raises(ServerUnreachable) as caught:
        connect(credentials, verify_tls=True, retries=0)

    message = str(caught.value)
    assert f"cannot reach CouchDB at https://127.0.0.1:{port}" in message
    assert password not in message and password not in repr(caught.value)


class TlsProxy:
    """TLS in front of a real CouchDB server, with a self-signed certificate for 127.0.0.1.

    One thread per connection relays both directions, so no SSL object is
    ever used by two threads at once.
    """

    def __init__(self, backend_url: str, folder: Path):
        self.backend = requests.utils.urlparse(backend_url)
        self.cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(self.cert)], check=True, capture_output=True)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}"
        self.handshakes_failed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(connection,), daemon=True).start()

    def _relay(self, connection: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(connection, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            connection.close()
            return
        backend = socket.create_connection((self.backend.hostname, self.backend.port))
        try:
            while True:
                ready = [tls] if tls.pending() else select.select([tls, backend], [], [], 30)[0]
                if not ready:
                    return
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (backend if source is tls else tls).sendall(data)
        except OSError:
            return
        finally:
            tls.close()
            backend.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def tls_proxy(secured_server, token_type, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    proxy = TlsProxy(secured_server[0], tmp_path)
    yield proxy
    proxy.close()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_tls_from_the_config_checks_the_certificate(secured_server, tls_proxy, monkeypatch):
    _, user, password = secured_server
    monkeypatch.setenv("PICAS_USER", user)
    monkeypatch.setenv("PICAS_PASSWORD", password)
    monkeypatch.delenv("PICAS_URL", raising=False)
    monkeypatch.delenv("PICAS_DATABASE", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.delenv("PICASRC", raising=False)
    monkeypatch.setenv("HOME", str(tls_proxy.cert.parent))  # no ~/.picasrc: credentials from the environment only
    couchdb = {"url": tls_proxy.url, "database": secured_server.database, "verify_tls": True}

    # Verification on: a self-signed certificate is refused, the server named without the password.
    with pytest.raises(ServerUnreachable) as caught:
        resolve(couchdb).open()
    message = str(caught.value)
    assert f"TLS error talking to CouchDB at {tls_proxy.url}" in message and "REQUESTS_CA_BUNDLE" in message
    assert password not in message
    assert tls_proxy.handshakes_failed >= 1, "the client never even tried a TLS handshake"

    # Still on, now trusting that certificate: the same server, really reached through TLS.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_proxy.cert))
    db = resolve(couchdb).open()
    assert db.exists()

    # Off: accepted without a CA bundle, with a warning that says so.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with pytest.warns(UserWarning, match="TLS certificate verification is off"):
        db = resolve({**couchdb, "verify_tls": False}).open()
    assert db.exists()
