"""Where results live: plain paths and ``file://`` URLs natively, every other scheme through gfal.

A pilot copies a job's results to a URL, the wait for a step asks whether
they are still there, and the next step reads them from there. ``srm://``,
``gsiftp://``, ``davs://``, ``https://`` and the rest go through the real
``gfal-copy`` and ``gfal-stat`` (Debian: ``gfal2-util-scripts``,
``python3-gfal2-util`` and the protocol plugins). With ``LRT_GFAL_FOR_FILES=1``
in the environment, ``file://`` URLs go through gfal too (its file plugin),
which is how a machine without grid storage tries the gfal path for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path

from lrt_workflow.errors import LrtError
from lrt_workflow.files import atomic_file

#: Seconds one gfal command may take before it counts as failed.
GFAL_TIMEOUT = 600
#: gfal's scripts run the first Python on the PATH that imports gfal2; inside a virtual environment
#: that is not Debian's, which has the bindings.
SYSTEM_PYTHON = "/usr/bin/python3"
_MISSING = ("no such file", "not found", "enoent", "does not exist")


class StorageError(LrtError):
    """A result could not be copied or looked up."""


def is_local(url: str) -> bool:
    """Handled here, without gfal: plain paths, and file:// URLs unless LRT_GFAL_FOR_FILES is set."""
    scheme = urllib.parse.urlsplit(url).scheme
    return scheme == "" or (scheme == "file" and os.environ.get("LRT_GFAL_FOR_FILES", "") in ("", "0"))


def as_url(location: str, base: str | os.PathLike = ".") -> str:
    """A location as a URL: a plain path, relative to ``base``, becomes an absolute ``file://`` URL."""
    if "://" in location:
        return location
    return Path(base, location).resolve().as_uri()


def local_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    return Path(urllib.parse.unquote(parts.path)) if parts.scheme == "file" else Path(url)


def join(location: str, name: str) -> str:
    return location.rstrip("/") + "/" + name


def copy(source: Path, destination: str, *, overwrite: bool) -> None:
    """Copy a local file to ``destination`` (a path or URL), creating its folders."""
    if is_local(destination):
        target = local_path(destination)
        if target.exists() and not overwrite:
            raise StorageError(f"{destination} exists already and upload.overwrite is false")
        with atomic_file(target) as out, open(source, "rb") as data:
            shutil.copyfileobj(data, out)
        return
    _gfal("gfal-copy", "-p", *(["-f"] if overwrite else []), source.resolve().as_uri(), destination)


def exists(url: str) -> bool:
    """Whether ``url`` names something that exists. A failure to ask (a network error) is an error,
    not a missing file."""
    if is_local(url):
        return local_path(url).exists()
    try:
        _gfal("gfal-stat", url)
    except StorageError as error:
        if any(words in str(error).lower() for words in _MISSING):
            return False
        raise
    return True


def _gfal(*command: str) -> None:
    if shutil.which(command[0]) is None:
        raise StorageError(f"{command[0]} is needed for {command[-1]} but is not installed (Debian: apt-get install "
                           "gfal2-util-scripts python3-gfal2-util and the gfal2 plugin of the URL's protocol)")
    env = dict(os.environ)
    if "GFAL_PYTHONBIN" not in env and os.path.exists(SYSTEM_PYTHON):
        env["GFAL_PYTHONBIN"] = SYSTEM_PYTHON
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=GFAL_TIMEOUT, env=env,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise StorageError(f"{' '.join(command)}: no answer within {GFAL_TIMEOUT} s") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise StorageError(f"{command[0]} {command[-1]} failed (exit {result.returncode}): {' '.join(detail)}")
