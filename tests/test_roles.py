"""The workflow as each kind of user a PiCaS server has, on Apache CouchDB (or your own server).

a) the server admin, who may do anything, including creating the database;
b) a user who is admin of the database (named in ``_security.admins``) but not of the
   server: the usual PiCaS account. It must work fully;
c) a user who is only a member of the database (``_security.members``): it may read and
   write tokens, but not design documents. A run works when ``_design/<type>`` is there
   and current; when it is missing or out of date the run must stop before any token is
   made, saying what a database admin must run (``lrt design install``); once one has, it works.

Every run's password is looked for, and must not be found, on every command line while
the run goes, in Snakemake's output, in every file of the project folder, in the token
archive and in the tokens. The embedded server runs as an admin party and has no roles,
so these tests run only with LRT_TEST_COUCHDB.
"""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import pytest
import requests

import project
from lrt_workflow.couchdb import connect, open_database
from lrt_workflow.token import TokenStore
from lrt_workflow.token.views import LAST_SEEN
from project import OBSID
from servers import kind

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(kind() == "embedded", reason="the embedded server is an admin party: it has no roles "
                                                    "(set LRT_TEST_COUCHDB=apache or a URL)"),
]


def write_project(folder: Path, target) -> Path:
    """Three tokens (30 subbands in chunks of 10) in the target's database, in ``folder/project``
    (Snakemake's output goes beside it)."""
    project.one_step(folder / "project", target)
    return folder / "project"


def run_workflow(runs, folder: Path, target, timeout: float = 300) -> tuple[int, str]:
    """Snakemake in ``folder`` with the target's credentials in its environment only; every
    command line is searched for the password while it runs."""
    password = target.account.password
    run = runs.start_snakemake(folder, target=target, output=folder.parent / "snakemake.out")
    deadline = time.monotonic() + timeout
    while run.poll() is None:
        assert time.monotonic() < deadline, "the run did not finish in time"
        assert not [line for _, line in project.processes() if password in line], "the password is on a command line"
        time.sleep(0.1)
    output = runs.finish(run, check=False).stdout
    assert password not in output, "the password is in Snakemake's output"
    return run.returncode, output


def assert_password_nowhere(folder: Path, target) -> None:
    password = target.account.password.encode()
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert password not in path.read_bytes(), f"the password is in {path}"
    archive = folder / "results" / OBSID / "tokens_demo.tar.gz"
    if archive.exists():
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    assert password not in tar.extractfile(member).read(), f"the password is in {member.name}"
    for doc in target.tokens(folder, attachments=True) or []:
        assert password not in json.dumps(doc).encode(), f"the password is in token {doc['_id']}"


def assert_completed(folder: Path, target, code: int, output: str) -> None:
    assert code == 0, output[-5000:]
    status = json.loads((folder / "results" / OBSID / "status.json").read_text())
    assert status["counts"] == {"todo": 0, "locked": 0, "done": 3, "error": 0, "total": 3}
    assert target.stopped(folder), "an embedded server was started"
    assert_password_nowhere(folder, target)


def session_of(target) -> dict:
    return requests.get(f"{target.server.url}_session", auth=target.account.auth, timeout=30).json()["userCtx"]


def install_design(target, token_type: str = "demo") -> None:
    """What a database admin does for a member: ``_design/<type>``, as the current version makes it."""
    client = connect(target.server.credentials())
    TokenStore(open_database(client, target.database), token_type).ensure_design()


# --- a) the server admin -----------------------------------------------------------------------------------


def test_a_the_server_admin_runs_the_workflow_and_it_creates_the_database(tmp_path, workflow_couchdb_for, runs):
    target = workflow_couchdb_for("server-admin", create=False)
    assert "_admin" in session_of(target)["roles"]
    folder = write_project(tmp_path, target)

    code, output = run_workflow(runs, folder, target)

    assert_completed(folder, target, code, output)
    assert target.database in target.server.databases()


# --- b) a database admin: the usual PiCaS account -------------------------------------------------------


def test_b_a_database_admin_runs_the_workflow_and_a_rerun_does_nothing(tmp_path, workflow_couchdb_for, runs):
    target = workflow_couchdb_for("picas")
    assert "_admin" not in session_of(target)["roles"], "this must be an ordinary user"
    security = target.server.request("GET", f"{target.database}/_security").json()
    assert security["admins"]["names"] == [target.account.name]
    folder = write_project(tmp_path, target)

    code, output = run_workflow(runs, folder, target)

    assert_completed(folder, target, code, output)
    assert json.loads((folder / "results" / OBSID / "design.json").read_text())["written"] is True
    code, output = run_workflow(runs, folder, target)
    assert code == 0 and "Nothing to be done" in output, output[-3000:]


def test_b_a_database_admin_without_a_database_is_told_a_server_admin_must_create_it(tmp_path,
                                                                                      workflow_couchdb_for, runs):
    target = workflow_couchdb_for("picas", create=False)
    folder = write_project(tmp_path, target)

    code, output = run_workflow(runs, folder, target)

    # CouchDB 3 answers the non-admin's PUT /db with "401 You are not a server admin.": the
    # database is missing, the password is right, and the message must say so.
    assert code != 0
    assert target.database not in target.server.databases()
    assert f"database {target.database!r} does not exist" in output and "only a server admin may create it" in output, \
        output[-3000:]
    assert "check the user and password" not in output, output[-3000:]
    assert_password_nowhere(folder, target)


# --- c) a database member only ----------------------------------------------------------------------------


def test_c_a_member_runs_the_workflow_when_the_design_document_is_current(tmp_path, workflow_couchdb_for, runs):
    target = workflow_couchdb_for("member")
    security = target.server.request("GET", f"{target.database}/_security").json()
    assert security["admins"]["names"] == [] and security["members"]["names"] == [target.account.name]
    install_design(target)
    folder = write_project(tmp_path, target)

    code, output = run_workflow(runs, folder, target)

    assert_completed(folder, target, code, output)
    assert json.loads((folder / "results" / OBSID / "design.json").read_text())["written"] is False


def make_design_out_of_date(target) -> None:
    install_design(target)
    design = target.server.request("GET", f"{target.database}/_design/demo").json()
    del design["views"][LAST_SEEN]  # as made by an older version, before that view existed
    target.server.request("PUT", f"{target.database}/_design/demo", json=design)


@pytest.mark.parametrize("design", ["missing", "out-of-date"])
def test_c_a_member_is_told_what_a_database_admin_must_run_when_the_design_is_not_current(
        tmp_path, workflow_couchdb_for, runs, design):
    target = workflow_couchdb_for("member")
    if design == "out-of-date":
        make_design_out_of_date(target)
    folder = write_project(tmp_path, target)

    code, output = run_workflow(runs, folder, target)

    # The run fails before any token is made...
    assert code != 0
    assert target.tokens(folder) == []
    assert_password_nowhere(folder, target)
    # ...with a message that says what to do, not one that blames the password.
    assert "check the user and password" not in output, output[-3000:]
    state = "missing" if design == "missing" else "out of date"
    assert f"_design/demo in database {target.database} is {state}" in output, output[-3000:]
    assert "Ask a database admin to run, in this project folder, 'lrt design install'" in output, output[-3000:]

    # A database admin does so (here the server admin: this database has no other), and the member's
    # run, the same command again, goes through.
    installed = runs.lrt(folder, "design", "install", env=target.server.environment())
    assert installed.returncode == 0 and "_design/demo written" in installed.stdout, installed.stdout[-3000:]
    code, output = run_workflow(runs, folder, target)
    assert_completed(folder, target, code, output)
