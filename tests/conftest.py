"""Shared fixtures: one real embedded CouchDB server per test session, one fresh database per test."""

from __future__ import annotations

import itertools
import json
import re
import secrets

import pytest

from lrt_workflow.couchdb import connect
from lrt_workflow.couchdb.credentials import PicasCredentials
from lrt_workflow.couchdb.embedded import EmbeddedServer

_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def couchdb_server(tmp_path_factory):
    """A real pouchdb-server on a free loopback port, with its data in a temporary folder."""
    server = EmbeddedServer(tmp_path_factory.mktemp("couchdb"))
    state, _ = server.start()
    yield state
    server.stop()


@pytest.fixture(scope="session")
def couchdb_client(couchdb_server):
    client = connect(PicasCredentials(url=couchdb_server.url))
    yield client
    client.disconnect()


@pytest.fixture
def database(couchdb_client, request):
    """A new, empty database for this test, deleted afterwards."""
    slug = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:60]
    name = f"t{next(_database_numbers):04d}_{slug}"
    db = couchdb_client.create_database(name, throw_on_exists=True)
    yield db
    couchdb_client.delete_database(name)


@pytest.fixture(scope="session")
def secured_server(tmp_path_factory):
    """A second embedded server that requires a password: an admin, and a
    database ``secured`` readable and writable by that admin only.

    Yields (url, user, password)."""
    import requests

    user, password = "picas-admin", "Pw-" + secrets.token_hex(8)
    server = EmbeddedServer(tmp_path_factory.mktemp("couchdb-secured"))
    state, _ = server.start()
    url = state.url.rstrip("/")
    requests.put(f"{url}/_config/admins/{user}", data=json.dumps(password)).raise_for_status()
    auth = (user, password)
    requests.put(f"{url}/secured", auth=auth).raise_for_status()
    security = {"admins": {"names": [user]}, "members": {"names": [user]}}
    requests.put(f"{url}/secured/_security", json=security, auth=auth).raise_for_status()
    yield url, user, password
    server.stop()
