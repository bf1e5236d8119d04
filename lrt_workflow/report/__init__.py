"""The report of a run: one self-contained HTML page an operator would rather look at than read.

Pure: no I/O and no network. Everything comes from the token documents
themselves (their ``history`` of events, or for older tokens ``times``,
``lock`` and ``done``) and the logs a pilot attached to them, so the page is
true however the run went, and it can be redrawn from a token archive long
after the database was purged.

Public API::

    render(title, sections, log_dir="logs") -> str     # the whole page
    log_files(sections, log_dir="logs") -> {relative path: bytes}  # the logs it links to

``sections`` is one `Section` or a list of them, one per pipeline step::

    Section(
        name="pref3_cal",                       # the step, as the page heads it
        tokens=[(document, attachments), ...],  # what read_archive() gives; a bare document works too
        counts={"todo": 0, "locked": 0, "done": 9, "error": 1, "total": 10},  # None: counted from the tokens
    )

``attachments`` maps attachment names to bytes; the report reads
``stdout.log`` and ``stderr.log`` (the tails a pilot attached) and
``srm.txt`` (to count a token's links). A plain mapping with the keys
``name``, ``tokens`` and ``counts`` is accepted wherever a `Section` is.

Per section the page shows the final counts, every failed token first with
the last lines of its stderr, a timeline with one bar per attempt (retries
are separate bars, coloured by how they ended, with tooltips), the
throughput, and a table of every token that sorts when a column header is
clicked (inline script; without it the table is simply unsorted). The page
links each token's logs as ``<log_dir>/<token id>.stdout.log`` and
``.stderr.log``: write `log_files` next to the page to make those links work.
The page holds no URL to anything outside itself: it opens from disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence, Union

from lrt_workflow.report.attempts import STATES, TokenView, view
from lrt_workflow.report.page import log_path, page

__all__ = ["Section", "render", "log_files", "token_views"]


@dataclass
class Section:
    """One pipeline step's tokens: ``(document, {attachment name: bytes})`` pairs, and its final counts."""

    name: str
    tokens: Sequence = field(default_factory=list)
    counts: Mapping[str, int] | None = None


SectionLike = Union[Section, Mapping]


def _sections(sections: SectionLike | Iterable[SectionLike]) -> list[Section]:
    if isinstance(sections, (Section, Mapping)):
        sections = [sections]
    result = []
    for item in sections:
        if isinstance(item, Mapping):
            item = Section(name=str(item.get("name", "tokens")), tokens=item.get("tokens") or [],
                           counts=item.get("counts"))
        result.append(item)
    return result


def _pairs(tokens: Iterable) -> list[tuple[Mapping, Mapping]]:
    """(document, attachments) for each entry, whether given as a pair or as a bare document."""
    return [(entry, {}) if isinstance(entry, Mapping) else (entry[0], entry[1] or {}) for entry in tokens]


def token_views(section: SectionLike) -> list[TokenView]:
    """What the report makes of each token of a section: its attempts, state and logs."""
    return [view(doc, files) for doc, files in _pairs(_sections(section)[0].tokens)]


def _counts(given: Mapping | None, tokens: Sequence[TokenView]) -> dict[str, int]:
    if given:
        return {key: int(given.get(key, 0) or 0) for key in (*STATES, "total")}
    counts = {state: sum(1 for t in tokens if t.state == state) for state in STATES}
    return {**counts, "total": len(tokens)}


def _check_log_dir(log_dir: str) -> str:
    if "://" in log_dir or log_dir.startswith(("/", "\\")):
        raise ValueError(f"log_dir must be a relative folder, next to the report, not {log_dir!r}")
    return log_dir.strip("/")


def render(title: str, sections: SectionLike | Iterable[SectionLike], log_dir: str = "logs") -> str:
    """The whole page, as a string of HTML. See the module's docstring for the input."""
    log_dir = _check_log_dir(log_dir)
    parts = []
    for section in _sections(sections):
        tokens = [view(doc, files) for doc, files in _pairs(section.tokens)]
        parts.append((section.name, _counts(section.counts, tokens), tokens))
    return page(title, parts, log_dir)


def log_files(sections: SectionLike | Iterable[SectionLike], log_dir: str = "logs") -> dict[str, bytes]:
    """{path relative to the report: bytes} of every log the page links to, for the caller to write."""
    log_dir = _check_log_dir(log_dir)
    files = {}
    for section in _sections(sections):
        for doc, attachments in _pairs(section.tokens):
            for name in ("stdout.log", "stderr.log"):
                data = attachments.get(name)
                if isinstance(data, (bytes, bytearray)):
                    files[log_path(log_dir, str(doc.get("_id", "?")), name)] = bytes(data)
    return files

