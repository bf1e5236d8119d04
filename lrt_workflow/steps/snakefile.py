"""What the Snakefile itself needs at parse time and at start and end of a run.

Kept small on purpose: the Snakefile only names the outputs and starts the
embedded server; every step of the work is an ``lrt step`` of its own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

from lrt_workflow.config import validate_config
from lrt_workflow.couchdb.embedded import pid_alive
from lrt_workflow.couchdb.target import embedded_server
from lrt_workflow.files import write_atomic
from lrt_workflow.srmlist import find_obsid

OWNER_FILE = "owner.json"


def validate(config: dict) -> None:
    """Validate Snakemake's config against the package's schema and fill in the defaults, in place."""
    config.update(validate_config(config, source="config"))


def peek_obsid(srm_file: str | os.PathLike) -> str:
    """The OBSID for naming the output folder, read leniently.

    The srmlist rule validates the list properly and reports every problem;
    here a list too broken to name an OBSID just gets the folder ``unknown``,
    so that rule can run and say what is wrong.
    """
    try:
        with open(srm_file, "rb") as file:
            for raw in file.read(1 << 20).splitlines():
                line = raw.decode("utf-8", "replace")
                if "://" in line and (obsid := find_obsid(line.split("://", 1)[1])):
                    return obsid
    except OSError:
        pass
    return "unknown"


def write_config_snapshot(config: Mapping, path: str | os.PathLike) -> str:
    """Write the validated configuration where the steps read it; rewrite only when it changed."""
    path = Path(path)
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text)
    return str(path)


def start_embedded(config: Mapping) -> None:
    """Start the embedded server for this run unless one is running.

    The run that starts it owns it and stops it at the end. A server left
    behind by a run that was killed is adopted by the next run, which then
    stops it; a server someone started by hand is left running.
    """
    server = embedded_server(config.get("couchdb"))
    if server is None:
        return
    state, started = server.start()
    owner = server.data_dir / OWNER_FILE
    previous = json.loads(owner.read_text()) if owner.exists() else None
    orphaned = previous and previous.get("server_pid") == state.pid and not pid_alive(previous.get("run_pid", 0))
    if started or orphaned:
        owner.write_text(json.dumps({"run_pid": os.getpid(), "server_pid": state.pid}) + "\n")
    print(f"embedded CouchDB server at {state.url} (pid {state.pid}, data in {state.data_dir})")


def stop_embedded(config: Mapping) -> None:
    server = embedded_server(config.get("couchdb"))
    if server is None:
        return
    owner = server.data_dir / OWNER_FILE
    if owner.exists() and json.loads(owner.read_text()).get("run_pid") == os.getpid():
        server.stop()
        owner.unlink(missing_ok=True)


def print_summary(out_dir: str | os.PathLike, token_type: str) -> None:
    """The end of a successful run: the final counts and where the results are."""
    out_dir = Path(out_dir)
    status_file = out_dir / "status.json"
    if not status_file.exists():
        return
    counts = json.loads(status_file.read_text())["counts"]
    print("final counts: " + " ".join(f"{state}={counts[state]}" for state in ("todo", "locked", "done", "error", "total")))
    print(f"archive: {out_dir / f'tokens_{token_type}.tar.gz'}")
    print(f"report:  {out_dir / 'report.html'}")
