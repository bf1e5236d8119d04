"""``lrt couchdb start|stop|status``: the embedded server by hand."""

from __future__ import annotations

import argparse
import json

from lrt_workflow.couchdb.embedded import BY_HAND, DEFAULT_DATA_DIR, EmbeddedServer
NOT_RUNNING = 3  # the exit status `systemctl status` uses for a stopped service


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "couchdb",
        help="start, stop or inspect the embedded CouchDB server",
        description=(
            "Manage the embedded CouchDB-compatible server (pouchdb-server from the project's node_modules). "
            "Its data and a state file with its PID and URL live in --data-dir, so a second start finds the "
            "running server instead of starting another."
        ),
    )
    commands = parser.add_subparsers(dest="couchdb_command", required=True, metavar="ACTION")

    def add(name: str, help: str, func) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--data-dir", default=DEFAULT_DATA_DIR,
            help=f"folder holding the server's databases and state file (default: {DEFAULT_DATA_DIR})",
        )
        sub.add_argument("--json", action="store_true", help="print the server's state as JSON")
        sub.set_defaults(func=func)
        return sub

    start = add("start", "start the server unless it already runs, and print its URL", cmd_start)
    start.add_argument("--port", type=int, help="port to listen on (default: a free one)")
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it to answer (default: 60)")
    add("stop", "stop the server recorded in the data folder, whoever uses it", cmd_stop)
    add("status", f"say whether the server runs; exit status {NOT_RUNNING} when it does not", cmd_status)


def _report(args, state, message: str) -> None:
    if args.json:
        print(json.dumps({"running": state is not None, **(vars(state) if state else {})}))
    else:
        print(message)


def cmd_start(args) -> int:
    server = EmbeddedServer(args.data_dir, port=args.port)
    state, started = server.start(timeout=args.timeout)
    server.acquire(BY_HAND)  # started by hand, it runs until 'lrt couchdb stop', whoever else uses it
    verb = "started" if started else "already running:"
    _report(args, state, f"{verb} pouchdb-server pid {state.pid} at {state.url} (data in {state.data_dir})")
    return 0


def cmd_stop(args) -> int:
    state = EmbeddedServer(args.data_dir).stop()
    _report(args, None, f"stopped pouchdb-server pid {state.pid}" if state else "no server was running")
    return 0


def cmd_status(args) -> int:
    server = EmbeddedServer(args.data_dir)
    state = server.running()
    if state:
        _report(args, state, f"running: pouchdb-server pid {state.pid} at {state.url} (data in {state.data_dir})")
        return 0
    _report(args, None, f"not running (data folder {server.data_dir})")
    return NOT_RUNNING
