"""Which CouchDB database a command or rule works on, and opening it.

The ``couchdb`` section of ``config.yaml`` says where: ``url: embedded`` (the
project's own pouchdb-server, with its data in ``embedded_data_dir``) or the
URL of a PiCaS server. Credentials come from `credentials.load_credentials`,
never from the command line, so no password shows in a process list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from lrt_workflow.couchdb.client import connect, open_database
from lrt_workflow.couchdb.credentials import PicasCredentials, load_credentials, redact_url
from lrt_workflow.couchdb.embedded import DEFAULT_DATA_DIR, EMBEDDED, EmbeddedServer, is_embedded
from lrt_workflow.errors import ServerError


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
    an error if that server is not running.
    """
    section = dict(couchdb or {})
    section.pop("verify_tls", None)
    data_dir = section.pop("embedded_data_dir", DEFAULT_DATA_DIR)
    creds = load_credentials(url=url, database=database, config=section)
    if not creds.database:
        raise ServerError("no database name: set couchdb.database in config.yaml, PICAS_DATABASE, or --database")
    embedded = is_embedded(creds.url)
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


def embedded_server(couchdb: Mapping | None, *, url: str | None = None) -> EmbeddedServer | None:
    """The embedded server a configuration asks for, once ``--url``, the environment and picasrc have
    had their say; None when they name a real server."""
    section = couchdb or {}
    if not is_embedded(load_credentials(url=url, config={"url": section.get("url", EMBEDDED)}).url):
        return None
    return EmbeddedServer(section.get("embedded_data_dir", DEFAULT_DATA_DIR))
