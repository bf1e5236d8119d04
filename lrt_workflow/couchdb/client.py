"""Connections to a CouchDB server (the embedded one or a production PiCaS server).

Everything that talks to CouchDB gets its client here, so that credentials,
TLS verification, retries and error messages are handled once:

* basic auth, which every CouchDB 3 accepts and which needs no session to renew;
* transient failures (connection refused or reset, 5xx) are retried with a
  bounded backoff; a 4xx never is, because asking again will not change the answer;
* failures become typed `CouchDBError` exceptions whose messages name the
  server without its password.
"""

from __future__ import annotations

import contextlib
import logging
import urllib.parse
import warnings

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from lrt_workflow.couchdb.credentials import PicasCredentials, redact_url
from lrt_workflow.errors import LrtError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # cloudant announces its own deprecation
    from cloudant.client import CouchDB
    from cloudant.database import CouchDatabase

log = logging.getLogger(__name__)

#: (connect, read) seconds. Reads are long because the first query of a view
#: over many tokens makes the server build its index.
TIMEOUT = (10, 600)
TRANSIENT_STATUS = (500, 502, 503, 504)


class CouchDBError(LrtError):
    """A request to CouchDB failed."""


class ServerUnreachable(CouchDBError):
    """No CouchDB server answers at the URL."""


class AuthenticationFailed(CouchDBError):
    """The server refused our credentials (or their absence)."""


class Forbidden(AuthenticationFailed):
    """The server knows the user, who lacks the right to do this (403)."""


class DatabaseMissing(CouchDBError):
    """The database does not exist on the server."""


class UpdateConflict(CouchDBError):
    """A document changed on the server since we read it."""


def split_url_credentials(credentials: PicasCredentials) -> PicasCredentials:
    """Move a ``user:password@`` out of the URL into the credentials.

    A password left in the URL would end up in every error message and log
    line that shows the URL.
    """
    parts = urllib.parse.urlsplit(credentials.url or "")
    if not parts.username:
        return credentials
    host = parts.netloc.rsplit("@", 1)[1]
    return PicasCredentials(
        user=credentials.user or urllib.parse.unquote(parts.username),
        password=credentials.password or urllib.parse.unquote(parts.password or "") or None,
        database=credentials.database,
        url=urllib.parse.urlunsplit(parts._replace(netloc=host)),
    )


def retrying_adapter(retries: int = 5, backoff: float = 0.3) -> HTTPAdapter:
    """An adapter that retries connection failures and 5xx answers, never 4xx.

    Every method is retried: the writes this package makes are either
    idempotent (deterministic ids, so a repeated create meets a 409 that the
    caller treats as "already there") or carry a revision, so a repeat cannot
    apply twice.
    """
    retry = Retry(
        total=retries,
        connect=retries,
        read=2,
        status=retries,
        backoff_factor=backoff,
        backoff_max=10,
        status_forcelist=TRANSIENT_STATUS,
        allowed_methods=None,
        raise_on_status=False,
    )
    return HTTPAdapter(max_retries=retry, pool_maxsize=8)


def connect(credentials: PicasCredentials, *, verify_tls: bool = True, retries: int = 5) -> CouchDB:
    """A client for ``credentials.url``, checked to answer.

    Without a user the server is addressed as an "admin party", which is how
    the embedded server runs by default.
    """
    credentials = split_url_credentials(credentials)
    if not credentials.url:
        raise CouchDBError("no CouchDB URL given: set couchdb.url in config.yaml, PICAS_URL, or url= in ~/.picasrc")
    url = credentials.url.rstrip("/")
    client = CouchDB(
        credentials.user,
        credentials.password,
        url=url,
        admin_party=not credentials.user,
        use_basic_auth=bool(credentials.user),
        adapter=retrying_adapter(retries),
        timeout=TIMEOUT,
        connect=False,
    )
    with translate_errors(url):
        client.connect()
        if not verify_tls:
            if url.startswith("https:"):
                warnings.warn(f"TLS certificate verification is off for {url}", stacklevel=2)
                log.warning("TLS certificate verification is off for %s", url)
            client.r_session.verify = False
        # The welcome request proves the server is there; _session proves
        # the credentials, which the welcome request never checks.
        client.r_session.get(url).raise_for_status()
        if credentials.user:
            session = client.r_session.get(url + "/_session")
            session.raise_for_status()
            if session.json().get("userCtx", {}).get("name") != credentials.user:
                raise AuthenticationFailed(f"CouchDB at {url} did not accept the credentials of user {credentials.user!r}")
    return client


def open_database(client: CouchDB, name: str, *, create: bool = False) -> CouchDatabase:
    """The database ``name``, created first when asked to."""
    with translate_errors(client.server_url, name):
        db = CouchDatabase(client, name)
        exists = db.exists()
        if create and not exists:
            # Only when missing: CouchDB 3 refuses PUT /db from anyone but a
            # server admin, even for a database that exists.
            response = client.r_session.put(db.database_url)
            if response.status_code in (401, 403):
                # CouchDB 3 answers a non-admin's PUT /db with 401 "You are not a server
                # admin.", after connect() has accepted the credentials: the database is
                # missing, not the password wrong (the embedded server lets anyone create one).
                raise DatabaseMissing(
                    f"database {name!r} does not exist on {redact_url(client.server_url)}, and only a server "
                    f"admin may create it ({response.status_code} {http_reason(response)}); ask one to create it "
                    "and to name you in its _security, or check couchdb.database in config.yaml"
                )
            if response.status_code not in (201, 202, 412):  # 412: created meanwhile
                response.raise_for_status()
        elif not exists:
            raise DatabaseMissing(
                f"database {name!r} does not exist on {redact_url(client.server_url)}; "
                "create it, or check couchdb.database in config.yaml"
            )
    return db


@contextlib.contextmanager
def translate_errors(url: str, database: str | None = None):
    """Turn the HTTP client's exceptions into `CouchDBError`s that say what to do."""
    where = redact_url(url.rstrip("/")) + (f"/{database}" if database else "")
    try:
        yield
    except requests.HTTPError as error:
        raise http_error(error.response, where) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
        raise CouchDBError(f"{where!r} is not a CouchDB URL: expected http(s)://host:port") from None
    except requests.exceptions.SSLError as error:
        raise ServerUnreachable(
            f"TLS error talking to CouchDB at {where}: {type(error).__name__}. If the server uses a private "
            "certificate authority, set REQUESTS_CA_BUNDLE; turning verification off (couchdb.verify_tls: false) "
            "is possible but unsafe"
        ) from None
    except (requests.ConnectionError, requests.Timeout) as error:
        raise ServerUnreachable(
            f"cannot reach CouchDB at {where} ({type(error).__name__}); is the server running and the URL right?"
        ) from None


def http_reason(response: requests.Response) -> str:
    """CouchDB's ``error: reason`` of a failed response, else the HTTP reason phrase."""
    try:
        body = response.json()
        return f"{body.get('error')}: {body.get('reason')}"
    except ValueError:
        return response.reason


def http_error(response: requests.Response, where: str) -> CouchDBError:
    """The typed error for a failed response."""
    status = response.status_code
    reason = http_reason(response)
    if status == 403:
        return Forbidden(
            f"CouchDB at {where} refused the request ({status} {reason}): the user is known but lacks the right "
            "to do this; a database admin (named in the database's _security) or a server admin may"
        )
    if status == 401:
        return AuthenticationFailed(
            f"CouchDB at {where} refused the request ({status} {reason}); check the user and password "
            "(PICAS_USER / PICAS_PASSWORD or ~/.picasrc) and the user's rights on the database"
        )
    if status == 404:
        return DatabaseMissing(f"not found on CouchDB at {where} ({reason})")
    if status == 409:
        return UpdateConflict(f"update conflict at {where} ({reason})")
    return CouchDBError(f"CouchDB at {where} answered {status} ({reason})")
