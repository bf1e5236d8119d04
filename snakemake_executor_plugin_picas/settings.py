"""The ``--picas-*`` options, and the server, database and credentials they lead to.

Each field is a Snakemake option ``--picas-<field>`` and an environment variable
``SNAKEMAKE_PICAS_<FIELD>`` (or a profile key ``picas-<field>``). The server and the
database are found as ``lrt`` finds them: these options, then ``PICAS_URL`` /
``PICAS_DATABASE``, then ``~/.picasrc``, then the ``couchdb`` section of ``./config.yaml``,
then the picas client's ``~/.config/picas/conf.yml``. The user and password come only from
``PICAS_USER`` / ``PICAS_PASSWORD``, ``~/.picasrc`` or the picas client's settings: there is
no option for them, so no password ever stands on a command line.

(No ``from __future__ import annotations`` here: Snakemake reads the fields' types at run time.)
"""

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import ExecutorSettingsBase

from lrt_workflow.couchdb.embedded import EMBEDDED, EmbeddedServer
from lrt_workflow.couchdb.target import Target, embedded_server, resolve
from lrt_workflow.errors import LrtError
from lrt_workflow.token.views import check_type

#: The database when nothing names one: the default of lrt's config.yaml.
DEFAULT_DATABASE = "lrt"
SCOPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class ExecutorSettings(ExecutorSettingsBase):
    url: Optional[str] = field(default=None, metadata={
        "help": "The CouchDB server (an http(s) URL), or 'embedded' for the project's own server in "
                "./.lrt/couchdb. Default: PICAS_URL, ~/.picasrc, the couchdb section of ./config.yaml, "
                "the picas client's settings, else 'embedded'. Never a password: that comes from "
                "PICAS_PASSWORD or ~/.picasrc.",
        "env_var": True, "type": str})
    database: Optional[str] = field(default=None, metadata={
        "help": f"The database of the tokens. Default: PICAS_DATABASE, ~/.picasrc, ./config.yaml, else "
                f"'{DEFAULT_DATABASE}'.",
        "env_var": True, "type": str})
    token_type: str = field(default="snakemake", metadata={
        "help": "The tokens' type: their design document _design/<type>, and what pilots serve with "
                "'lrt worker --type <type>'.",
        "env_var": True})
    scope: Optional[str] = field(default=None, metadata={
        "help": "Names this workflow's tokens apart from other workflows' in the same database: part of "
                "every token id, and the tokens' OBSID, so 'lrt worker --type T --obsid SCOPE' serves this "
                "workflow only. Default: the working folder's name and a digest of its path.",
        "env_var": True, "type": str})
    lease_seconds: float = field(default=3600.0, metadata={
        "help": "A running token whose pilot has not been heard of (no heartbeat) for this long is put "
                "back to be run by another pilot. Give pilots 'lrt worker --lease-seconds' no longer than "
                "this (its default, 3600, is the same).",
        "env_var": True})
    status_seconds: Optional[float] = field(default=None, metadata={
        "help": "Seconds between status rounds, each one request for all jobs of the run. Default: "
                "Snakemake's --seconds-between-status-checks.",
        "env_var": True, "type": float})
    max_scrub: int = field(default=2, metadata={
        "help": "How often a token whose pilot went silent is put back before its job fails (a job that "
                "kills its pilots must not loop). A job that fails is Snakemake's to retry (--retries).",
        "env_var": True})


def check(settings: ExecutorSettings) -> None:
    """Refuse settings that cannot work, before any token is made."""
    if settings.url and urllib.parse.urlsplit(settings.url).password:
        raise WorkflowError("--picas-url holds a password; give it in PICAS_PASSWORD or ~/.picasrc instead, "
                            "never on a command line")
    try:
        check_type(settings.token_type)
    except LrtError as error:
        raise WorkflowError(f"--picas-token-type: {error}") from None
    if settings.scope is not None and not SCOPE.match(settings.scope):
        raise WorkflowError(f"--picas-scope {settings.scope!r}: use letters, digits, '_', '.' and '-', "
                            "starting with a letter or digit, at most 64 characters")
    if settings.lease_seconds <= 0 or settings.max_scrub < 0:
        raise WorkflowError("--picas-lease-seconds must be positive and --picas-max-scrub not negative")


def project_couchdb(folder: Path) -> dict:
    """The ``couchdb`` section of ``folder/config.yaml`` when that is lrt's configuration, else nothing.
    A workflow's own config.yaml without that section is none of our business."""
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    section = config.get("couchdb") if isinstance(config, dict) else None
    return dict(section) if isinstance(section, dict) else {}


def target(settings: ExecutorSettings, folder: Path) -> tuple[Target, Optional[EmbeddedServer]]:
    """Where the tokens go, and the embedded server to keep running meanwhile (None for a real server).
    The embedded server is started here when it is not running yet."""
    section = {"url": EMBEDDED, "database": DEFAULT_DATABASE, **project_couchdb(folder)}
    try:
        server = embedded_server(section, url=settings.url)
        if server is not None:
            server.acquire()
        try:
            return resolve(section, url=settings.url, database=settings.database), server
        except BaseException:
            if server is not None:
                server.release()
            raise
    except LrtError as error:  # a wrong setting: Snakemake shows it as the reason it stopped
        raise WorkflowError(f"picas executor: {error}") from None
