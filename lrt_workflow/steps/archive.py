"""Steps 8-9: every token with its attachments and logs in one archive, and the report of the run."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

from lrt_workflow.archive import archive_tokens, read_archive
from lrt_workflow.files import read_json, write_atomic
from lrt_workflow.report import Section, log_files, render
from lrt_workflow.steps import store_for

log = logging.getLogger("lrt_workflow")


#: Where the report's links find each token's logs, relative to the report.
TOKEN_LOGS = "logs/tokens"


def archive_step(settings: Mapping, tokens_file: str | os.PathLike, out: str | os.PathLike) -> Path:
    """All tokens of this step, their attachments and logs, in one archive; then purge if asked."""
    ids = read_json(tokens_file)["ids"]
    store = store_for(settings)
    out = Path(out)
    path = archive_tokens(store, out.parent, ids=ids, name=out.name)
    if settings["archive"]["purge"]:
        store.delete(ids)
        log.info("purged %d tokens after archiving them to %s", len(ids), path)
    return path


def report_step(title: str, steps: Sequence[tuple[str, str | os.PathLike, str | os.PathLike]],
                out: str | os.PathLike) -> Path:
    """The picture of the run, one section per step (name, status.json, archive), from the archived
    tokens (which outlive a purge) and their logs, which are copied next to the page so its links
    work after the database is gone."""
    sections = []
    for name, status_file, archive_file in steps:
        _, tokens = read_archive(archive_file)
        sections.append(Section(name, tokens, read_json(status_file)["counts"]))
    out = Path(out)
    for path, data in log_files(sections, TOKEN_LOGS).items():
        write_atomic(out.parent / path, data)
    return write_atomic(out, render(title, sections, TOKEN_LOGS))
