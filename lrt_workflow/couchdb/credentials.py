"""PiCaS credentials: who we are on the CouchDB server, and where that is written.

Each field is taken from the first source that has it, in this order:

1. explicit arguments;
2. the environment: ``PICAS_USER``, ``PICAS_PASSWORD``, ``PICAS_DATABASE``, ``PICAS_URL``;
3. a ``~/.picasrc``-style file of ``key=value`` lines (``PICASRC`` names another);
4. the ``couchdb`` section of ``config.yaml`` (never a password: that file is
   shared and committed, so a password there is refused);
5. the picas client's own settings, ``~/.config/picas/conf.yml`` (written by
   ``picas-cli init``): its user and password, for its server only, and its
   server and database when nothing above names them. Its password is
   encrypted with the key in ``~/.config/picas/key.dat``; it is read when the
   ``cryptography`` package is installed (it is wherever picas is), and
   otherwise must come from 2 or 3.

The password is kept out of ``repr``, ``str`` and every URL we print.
"""

from __future__ import annotations

import os
import stat
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import yaml

from lrt_workflow.errors import CredentialsError

FIELDS = ("user", "password", "database", "url")
#: The picas client's settings file, below the home folder.
PICAS_CONF = ".config/picas/conf.yml"
ENVIRONMENT = {name: f"PICAS_{name.upper()}" for name in FIELDS}
DEFAULT_PICASRC = "~/.picasrc"


@dataclass(frozen=True)
class PicasCredentials:
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    url: str | None = None

    def __repr__(self) -> str:
        shown = "'***'" if self.password else "None"
        return (
            f"PicasCredentials(user={self.user!r}, password={shown}, "
            f"database={self.database!r}, url={redact_url(self.url)!r})"
        )

    __str__ = __repr__

    def merged_over(self, other: "PicasCredentials") -> "PicasCredentials":
        """These credentials, with the fields they lack taken from ``other``."""
        return replace(self, **{name: getattr(other, name) for name in FIELDS if getattr(self, name) is None})


def redact_url(url: str | None) -> str | None:
    """``url`` with any password in it replaced, fit for logs and messages."""
    if not url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = urllib.parse.unquote(parts.username or "")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def read_picasrc(path: str | os.PathLike) -> PicasCredentials:
    """Read a ``key=value`` credentials file, refusing one that others can read.

    Keys are ``user``, ``password``, ``database`` and ``url``; the
    ``PICAS_``-prefixed spellings of the environment work too, so one file can
    serve both purposes. Blank lines and ``#`` comments are skipped.
    """
    path = Path(path).expanduser()
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"{path} holds a password but is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"make it private with: chmod 600 {path}"
        )
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().lower().removeprefix("picas_")
        if not sep or key not in FIELDS:
            # Never echo the line itself: it may be the password.
            raise CredentialsError(
                f"{path}, line {number}: expected 'key=value' with key one of {', '.join(FIELDS)}"
            )
        values[key] = value.strip().strip("'\"")
    return PicasCredentials(**values)


def from_environment(environ: Mapping[str, str] | None = None) -> PicasCredentials:
    environ = os.environ if environ is None else environ
    return PicasCredentials(**{name: environ[var] for name, var in ENVIRONMENT.items() if environ.get(var)})


def from_config(couchdb_section: Mapping | None) -> PicasCredentials:
    section = dict(couchdb_section or {})
    if section.get("password"):
        raise CredentialsError(
            "config.yaml must not hold a password (couchdb.password): put it in the PICAS_PASSWORD "
            "environment variable or in a private ~/.picasrc (chmod 600)"
        )
    return PicasCredentials(user=section.get("user"), database=section.get("database"), url=section.get("url"))


def load_credentials(
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
    url: str | None = None,
    *,
    picasrc: str | os.PathLike | None = None,
    config: Mapping | None = None,
    environ: Mapping[str, str] | None = None,
) -> PicasCredentials:
    """Gather credentials from every source, first source winning per field.

    ``picasrc`` defaults to ``$PICASRC`` or ``~/.picasrc``; a default file that
    does not exist is simply skipped, a named one that does not exist is an error.
    """
    environ = os.environ if environ is None else environ
    result = PicasCredentials(user=user, password=password, database=database, url=url)
    result = result.merged_over(from_environment(environ))
    named = picasrc or environ.get("PICASRC")
    rc_path = Path(named or DEFAULT_PICASRC).expanduser()
    if rc_path.exists():
        result = result.merged_over(read_picasrc(rc_path))
    elif named:
        raise CredentialsError(f"credentials file {rc_path} does not exist")
    result = result.merged_over(from_config(config))
    picas = from_picas_conf(Path(environ.get("HOME") or Path.home()) / PICAS_CONF)
    if picas.url and (not result.url or _same_server(result.url, picas.url)):
        result = result.merged_over(picas)
    return result


def _same_server(one: str, other: str) -> bool:
    return one.rstrip("/") == other.rstrip("/")


def from_picas_conf(path: Path) -> PicasCredentials:
    """The picas client's settings (``host_url``, ``database``, ``username``, ``encrypted_password``),
    or nothing when the file is missing or unreadable. Its password is decrypted when it can be."""
    try:
        settings = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return PicasCredentials()
    if not isinstance(settings, Mapping):
        return PicasCredentials()
    return PicasCredentials(user=settings.get("username") or None, database=settings.get("database") or None,
                            url=settings.get("host_url") or None,
                            password=_decrypted(settings.get("encrypted_password"), path.with_name("key.dat")))


def _decrypted(token, key_path: Path) -> str | None:
    """The picas client's Fernet-encrypted password, when its key and the ``cryptography`` package are here."""
    if not token:
        return None
    try:
        from cryptography.fernet import Fernet, InvalidToken  # noqa: PLC0415 - optional: only picas users have it
    except ImportError:
        return None
    try:
        return Fernet(key_path.read_bytes()).decrypt(str(token).encode()).decode()
    except (OSError, ValueError, InvalidToken):
        return None


# The classic names from the original tools.
picas_cred = PicasCredentials


def get_picas_cred(*args, **kwargs) -> PicasCredentials:
    """Classic name for `load_credentials`."""
    return load_credentials(*args, **kwargs)
