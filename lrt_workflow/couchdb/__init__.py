"""The one door to CouchDB: every HTTP request the package makes goes through here.

* `client`: connecting (basic auth, TLS, retries) and typed errors;
* `credentials`: who we are on the server, and where that is written;
* `target`: which server and database a configuration names;
* `embedded`: the project's own pouchdb-server;
* `store`: `TokenStore`, all traffic for the tokens of one type.
"""

from lrt_workflow.couchdb.client import (
    AuthenticationFailed,
    CouchDBError,
    DatabaseMissing,
    ServerUnreachable,
    UpdateConflict,
    connect,
    http_error,
    open_database,
    translate_errors,
)
from lrt_workflow.couchdb.credentials import PicasCredentials, get_picas_cred, load_credentials, picas_cred, redact_url
from lrt_workflow.couchdb.embedded import EmbeddedServer
from lrt_workflow.couchdb.store import CreateReport, TokenStore
from lrt_workflow.couchdb.target import EMBEDDED, Target, resolve

__all__ = [
    "AuthenticationFailed", "CouchDBError", "DatabaseMissing", "ServerUnreachable", "UpdateConflict",
    "connect", "http_error", "open_database", "translate_errors",
    "PicasCredentials", "get_picas_cred", "load_credentials", "picas_cred", "redact_url",
    "EmbeddedServer", "CreateReport", "TokenStore", "EMBEDDED", "Target", "resolve",
]
