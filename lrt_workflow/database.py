"""Which CouchDB database a command or rule works on, and opening it.

The ``couchdb`` section of ``config.yaml`` says where: ``url: embedded`` (the
project's own pouchdb-server, with its data in ``embedded_data_dir``) or the
URL of a PiCaS server. Credentials come from `credentials.load_credentials`,
never from the command line, so no password shows in a process list.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Mapping

from lrt_workflow.couchdb import connect, open_database
from lrt_workflow.credentials import PicasCredentials, load_credentials, redact_url
from lrt_workflow.embedded import EmbeddedServer
from lrt_workflow.errors import ServerError

EMBEDDED = "embedded"
DEFAULT_DATA_DIR = ".lrt/couchdb"


@dataclass(frozen=True)
class Target:
    """A resolved database: where it is, with which credentials."""

    credentials: PicasCredentials
    database: str
    verify_tls: bool = True
    embedded_data_dir: str | None = None

    @property
    def url(self) -> str:
        return redact_url(self.credentials.url)

    def open(self, *, create: bool = False):
        """The cloudant database object, connected."""
        client = connect(self.credentials, verify_tls=self.verify_tls)
        return open_database(client, self.database, create=create)


def resolve(couchdb: Mapping | None = None, *, url: str | None = None, database: str | None = None) -> Target:
    """The target named by explicit options, then the environment and picasrc, then config.yaml.

    ``embedded`` is replaced by the URL of the running embedded server; it is
    an error if that server is not running (`embedded_server` starts it).
    """
    section = dict(couchdb or {})
    section.pop("verify_tls", None)
    data_dir = section.pop("embedded_data_dir", DEFAULT_DATA_DIR)
    creds = load_credentials(url=url, database=database, config=section)
    if not creds.database:
        raise ServerError("no database name: set couchdb.database in config.yaml, PICAS_DATABASE, or --database")
    embedded = (creds.url or EMBEDDED) == EMBEDDED
    if embedded:
        state = EmbeddedServer(data_dir).running()
        if state is None:
            raise ServerError(
                f"the embedded CouchDB server for {data_dir} is not running; start it with "
                f"'lrt couchdb start --data-dir {data_dir}' (the workflow starts it by itself)"
            )
        creds = PicasCredentials(user=creds.user, password=creds.password, database=creds.database, url=state.url)
    return Target(
        credentials=creds,
        database=creds.database,
        verify_tls=bool((couchdb or {}).get("verify_tls", True)),
        embedded_data_dir=data_dir if embedded else None,
    )


@contextlib.contextmanager
def embedded_server(couchdb: Mapping | None):
    """Run the embedded server for the body if config.yaml asks for it and it is not running.

    A server that was already running is left running; one started here is stopped.
    """
    section = couchdb or {}
    if section.get("url", EMBEDDED) != EMBEDDED:
        yield None
        return
    server = EmbeddedServer(section.get("embedded_data_dir", DEFAULT_DATA_DIR))
    state, started = server.start()
    try:
        yield state
    finally:
        if started:
            server.stop()
