"""Steps 8-9: every token with its attachments and logs in one archive, and the report of the run."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping

from lrt_workflow.archive import archive_tokens, read_archive
from lrt_workflow.files import read_json, write_atomic
from lrt_workflow.report import Section, log_files, render
from lrt_workflow.steps import store_for

log = logging.getLogger("lrt_workflow")


def archive_step(config: Mapping, tokens_file: str | os.PathLike, out: str | os.PathLike) -> Path:
    """All tokens of this observation, their attachments and logs, in one archive; then purge if asked."""
    ids = read_json(tokens_file)["ids"]
    store = store_for(config)
    out = Path(out)
    path = archive_tokens(store, out.parent, ids=ids, name=out.name)
    if config["archive"]["purge"]:
        store.delete(ids)
        log.info("archive: purged %d tokens after archiving them to %s", len(ids), path)
    return path


def report_step(config: Mapping, status_file, polls_file, archive_file, out) -> Path:
    """The picture of the run, from the archived tokens (which outlive a purge) and their logs,
    which are copied next to the page so its links work after the database is gone."""
    status = read_json(status_file)
    _, tokens = read_archive(archive_file)
    section = Section(config["token"]["type"], tokens, status["counts"])
    title = f"{config['token']['type']} run of {Path(status_file).parent.name}"
    out = Path(out)
    for path, data in log_files(section).items():
        write_atomic(out.parent / path, data)
    return write_atomic(out, render(title, section))
