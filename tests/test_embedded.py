"""The embedded server manager, against real pouchdb-server processes."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from lrt_workflow.couchdb.embedded import EmbeddedServer, answers, is_pouchdb_process, pid_alive
from lrt_workflow.errors import ServerError


@pytest.fixture
def server(tmp_path):
    server = EmbeddedServer(tmp_path / "data")
    yield server
    server.stop()


def pouchdb_pids_for(data_dir):
    """PIDs of every pouchdb-server process serving ``data_dir``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if any(b"pouchdb-server" in part for part in cmdline) and str(data_dir).encode() in cmdline and pid_alive(int(entry)):
            pids.append(int(entry))
    return pids


def test_start_twice_starts_one_server(server):
    first, started_first = server.start()
    second, started_second = server.start()
    assert (started_first, started_second) == (True, False)
    assert first == second
    assert pouchdb_pids_for(server.data_dir) == [first.pid]
    assert json.loads(server.state_file.read_text())["pid"] == first.pid
    assert answers(first.url)


def test_stop_stops_exactly_that_pid_and_forgets_it(server):
    state, _ = server.start()
    assert server.stop() == state
    assert not pid_alive(state.pid)
    assert not server.state_file.exists()
    assert server.running() is None
    assert server.stop() is None


def test_stale_state_file_with_dead_pid_is_replaced(server):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    server.data_dir.mkdir(parents=True)
    server.state_file.write_text(json.dumps(
        {"pid": dead.pid, "url": "http://127.0.0.1:9/", "port": 9, "data_dir": str(server.data_dir), "started_at": 0}
    ))
    state, started = server.start()
    assert started and state.pid != dead.pid
    assert answers(state.url)


def test_stale_state_naming_a_foreign_live_process_never_signals_it(server):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        server.data_dir.mkdir(parents=True)
        server.state_file.write_text(json.dumps(
            {"pid": bystander.pid, "url": "http://127.0.0.1:9/", "port": 9,
             "data_dir": str(server.data_dir), "started_at": 0}
        ))
        assert not is_pouchdb_process(bystander.pid)
        assert server.stop() is None
        assert bystander.poll() is None
        state, started = server.start()
        assert started and state.pid != bystander.pid
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_garbage_state_file_is_treated_as_absent(server):
    server.data_dir.mkdir(parents=True)
    server.state_file.write_text("{not json")
    state, started = server.start()
    assert started and answers(state.url)


def test_documents_survive_a_restart(server):
    state, _ = server.start()

    def call(method, path, body=None):
        request = urllib.request.Request(
            state.url + path, method=method, data=json.dumps(body).encode() if body else None,
            headers={"Content-Type": "application/json"},
        )
        return json.loads(urllib.request.urlopen(request).read())

    assert call("PUT", "kept") == {"ok": True}
    call("POST", "kept/_bulk_docs", {"docs": [{"_id": f"token{i}"} for i in range(100)]})
    server.stop()
    state, started = server.start()
    assert started
    assert "kept" in call("GET", "_all_dbs")
    assert call("GET", "kept")["doc_count"] == 100
    assert call("GET", "kept/token42")["_id"] == "token42"


def test_configured_port_in_use_is_a_clear_error(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as listening:  # whatever server the session's tests use
        port = listening.getsockname()[1]
        with pytest.raises(ServerError, match=f"port {port} .* already in use"):
            EmbeddedServer(tmp_path / "other", port=port).start()


def test_configured_port_is_used(tmp_path):
    from lrt_workflow.couchdb.embedded import free_port

    port = free_port()
    server = EmbeddedServer(tmp_path / "data", port=port)
    try:
        state, _ = server.start()
        assert state.port == port and state.url == f"http://127.0.0.1:{port}/"
    finally:
        server.stop()


def test_uninstalled_server_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LRT_POUCHDB_SERVER", str(tmp_path / "nowhere" / "pouchdb-server"))
    with pytest.raises(ServerError, match="npm ci"):
        EmbeddedServer(tmp_path / "data").start()


def test_missing_node_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerError, match="'node' was not found.*Node.js"):
        EmbeddedServer(tmp_path / "data").start()


def test_server_that_dies_at_start_reports_its_log(tmp_path, monkeypatch):
    broken = tmp_path / "broken.js"
    broken.write_text("console.error('boom: cannot start'); process.exit(3);\n")
    monkeypatch.setenv("LRT_POUCHDB_SERVER", str(broken))
    server = EmbeddedServer(tmp_path / "data")
    with pytest.raises(ServerError, match="boom: cannot start"):
        server.start(timeout=10)
    assert not server.state_file.exists()


def lrt(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lrt_workflow", *args], cwd=cwd, capture_output=True, text=True)


def test_cli_start_twice_status_and_stop(tmp_path):
    data = tmp_path / "cli-data"
    try:
        first = lrt("couchdb", "start", "--data-dir", str(data), "--json", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        second = lrt("couchdb", "start", "--data-dir", str(data), cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        pid = json.loads(first.stdout)["pid"]
        assert pouchdb_pids_for(data.resolve()) == [pid]
        status = lrt("couchdb", "status", "--data-dir", str(data), cwd=tmp_path)
        assert status.returncode == 0 and str(pid) in status.stdout
    finally:
        stop = lrt("couchdb", "stop", "--data-dir", str(data), cwd=tmp_path)
    assert stop.returncode == 0 and f"stopped pouchdb-server pid {pid}" in stop.stdout
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)
    status = lrt("couchdb", "status", "--data-dir", str(data), cwd=tmp_path)
    assert status.returncode == 3 and "not running" in status.stdout


def test_cli_error_is_one_line_and_nonzero(tmp_path):
    env_run = subprocess.run(
        [sys.executable, "-m", "lrt_workflow", "couchdb", "start", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True,
        env={**os.environ, "LRT_POUCHDB_SERVER": str(tmp_path / "missing")},
    )
    assert env_run.returncode == 1
    assert env_run.stderr.startswith("lrt: error: pouchdb-server is not installed")
    assert "Traceback" not in env_run.stderr
