"""A job's results, copied where its token's ``upload`` block says.

The block is GRID_LRT's::

    "upload": {"location": "$RESULTS_DIR", "template": "${OBSID}_${STEP}_SB$STARTSB",
               "add_date": false, "date_granularity": "hour", "gzip": false, "overwrite": true}

The results are the files the job left in its work folder, apart from the
token's attachments and the logs. One file is copied as it is, named
``<template><its suffix>``; several are packed into ``<template>.tar``
(``.tar.gz`` with ``gzip``). ``$NAME`` and ``${NAME}`` in ``location`` and
``template`` take the token's field ``NAME``; ``$STEP`` is the pipeline step,
``$DATE`` the time of the upload at ``date_granularity`` (``day``, ``hour``,
``minute`` or ``second``), and ``add_date`` appends ``_$DATE`` to a template
that lacks it. ``location`` may be a plain path (relative to the pilot's
folder) or any URL; the copy's URL is what the token records, in
``Results_location``.
"""

from __future__ import annotations

import re
import tarfile
import time
from pathlib import Path
from typing import Iterable, Mapping

from lrt_workflow import storage
from lrt_workflow.errors import LrtError

DEFAULT_TEMPLATE = "${OBSID}_${STEP}_SB${STARTSB}"
DATE_FORMATS = {"day": "%Y%m%d", "hour": "%Y%m%d_%H", "minute": "%Y%m%d_%H%M", "second": "%Y%m%d_%H%M%S"}
LOGS = ("stdout.log", "stderr.log")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class UploadError(LrtError):
    """The results could not be found, named or copied."""


def expand(text: str, values: Mapping[str, object]) -> str:
    """``text`` with ``$NAME`` and ``${NAME}`` replaced. A bare ``$NAME`` takes the longest name that is
    known, so GRID_LRT's ``$STARTSB_$DATE`` reads as ``$STARTSB``, ``_`` and ``$DATE``."""
    def value(match: re.Match) -> str:
        braced, bare = match.groups()
        name = braced or bare
        if not braced:
            while name and name not in values:
                name = name[:-1]
        if not name or name not in values:
            raise UploadError(f"upload: {match.group(0)} in {text!r} names no field of the token")
        rest = "" if braced else bare[len(name):]
        return f"{values[name]}{rest}"

    return _VARIABLE.sub(value, text)


def result_files(workdir: Path, inputs: Iterable[str]) -> list[Path]:
    """The files the job left in ``workdir``, its inputs and logs apart, in name order."""
    skip = set(inputs) | set(LOGS)
    return sorted(path for path in workdir.rglob("*")
                  if path.is_file() and path.relative_to(workdir).as_posix() not in skip)


def upload(token: Mapping, workdir: Path, inputs: Iterable[str], *, base: str | Path = ".",
           now: float | None = None) -> str | None:
    """Copy the job's results per ``token["upload"]``; returns their URL, or None without a block."""
    block = token.get("upload")
    if not block:
        return None
    if not isinstance(block, Mapping) or not block.get("location"):
        raise UploadError("upload: the token's upload block names no location")
    when = time.localtime(now if now is not None else time.time())
    granularity = block.get("date_granularity", "hour")
    if granularity not in DATE_FORMATS:
        raise UploadError(f"upload: date_granularity {granularity!r} is none of {', '.join(DATE_FORMATS)}")
    values = {**{k: v for k, v in token.items() if isinstance(v, (str, int, float))},
              "STEP": token.get("lrt_step") or token.get("PIPELINE_STEP") or token.get("type"),
              "DATE": time.strftime(DATE_FORMATS[granularity], when)}
    template = block.get("template") or DEFAULT_TEMPLATE
    if block.get("add_date") and "DATE" not in template:
        template += "_$DATE"
    name = expand(template, values)
    location = storage.as_url(expand(str(block["location"]), values), base)
    files = result_files(workdir, inputs)
    if not files:
        raise UploadError("the job left no result files in its work folder to upload")
    packed = len(files) > 1
    if packed:
        name += ".tar.gz" if block.get("gzip") else ".tar"
        source = workdir.parent / f".{workdir.name}.{name}"  # beside the work folder, not among the results
        with tarfile.open(source, "w:gz" if block.get("gzip") else "w") as tar:
            for path in files:
                tar.add(path, arcname=path.relative_to(workdir).as_posix())
    else:
        source, name = files[0], name + "".join(files[0].suffixes)
    destination = storage.join(location, name)
    try:
        storage.copy(source, destination, overwrite=block.get("overwrite", True))
    finally:
        if packed:
            source.unlink(missing_ok=True)
    return destination
