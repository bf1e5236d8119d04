"""A whole srm list: read, validated as a whole, every problem reported at once with its line. Pure,
except for reading the list from a path.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from lrt_workflow.srmlist.links import (
    DEFAULT_PATTERN,
    Link,
    SrmListError,
    SubbandPattern,
    _SCHEME,
    _known_sites,
    _shorten,
    is_archive_link,
    normalise_url,
    parse_link,
)

# A real list is a few hundred lines of ~150 bytes; anything this big is a
# wrong file, and reading it whole would only waste memory before failing.
MAX_FILE_BYTES = 20 * 1024 * 1024
# Beyond this a message stops helping; the count of the rest is still given.
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class ParsedList:
    """A validated srm list: its links in file order, and what was noticed on the way."""

    source: str
    links: tuple[Link, ...]
    obsid: str | None
    site: str | None
    duplicates_dropped: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def urls(self) -> list[str]:
        return [link.url for link in self.links]

    def __len__(self) -> int:
        return len(self.links)


@dataclass
class _Verdict:
    """What one line is, decided without changing any state (see `_Checker`)."""

    kind: str  # 'skip' (blank or comment), 'duplicate', 'link', 'bad'
    line: int | None
    url: str | None = None
    link: Link | None = None
    problems: list[str] = field(default_factory=list)


def _url_field(line: str) -> str | None:
    """The URL text of a stripped line; None for a blank or comment line.

    Some lists carry a second field (a size, a checksum) beside the URL: keep
    the one field that is a URL. A copy-job file has a source and a
    destination on each line (``srm://... file:///...``): keep the one that is
    an archive link. Two archive links on one line are a problem.
    """
    if not line or line.startswith("#"):
        return None
    fields = line.split()
    if len(fields) == 1:
        return fields[0]
    urls = [f for f in fields if _SCHEME.match(f)]
    if len(urls) == 1:
        return urls[0]
    if not urls:
        raise SrmListError(f"not a URL: {_shorten(line)}")
    archive = [url for url in urls if is_archive_link(normalise_url(url))]
    if len(archive) == 1:
        return archive[0]
    if not archive:
        raise SrmListError(f"{len(urls)} URLs on one line and none is an archive link: {_shorten(line)}")
    raise SrmListError(f"{len(archive)} archive links on one line, expected one: {_shorten(line)}")


class _Checker:
    """The rules of one list, and what its earlier links fixed.

    `examine` judges a line without changing anything, `commit` records it.
    The split lets `srmlist.append` refuse a link and stay unchanged, while
    whole-file parsing commits every line and collects all problems.
    """

    def __init__(self, pattern: SubbandPattern | None, *, check_obsid: bool, check_site: bool):
        self.pattern = pattern  # None: subbands are not this checker's business
        self.check_obsid = check_obsid
        self.check_site = check_site
        self.links: list[Link] = []
        self.obsid: str | None = None
        self.obsid_line: int | None = None
        self.site: str | None = None
        self.site_line: int | None = None
        self.seen: dict[str, int | None] = {}
        self.subbands: dict[int, int | None] = {}

    def copy(self) -> _Checker:
        new = object.__new__(_Checker)
        new.__dict__.update(self.__dict__)
        new.links, new.seen, new.subbands = list(self.links), dict(self.seen), dict(self.subbands)
        return new

    @staticmethod
    def _from(line: int | None) -> str:
        return f" (line {line})" if line else ""

    def examine(self, text: str, line: int | None = None) -> _Verdict:
        try:
            url_text = _url_field(text.strip())
        except SrmListError as error:
            return _Verdict("bad", line, problems=[str(error)])
        if url_text is None:
            return _Verdict("skip", line)
        url = normalise_url(url_text)
        if url in self.seen:
            return _Verdict("duplicate", line, url)
        try:
            link = parse_link(url, self.pattern)
        except SrmListError as error:
            return _Verdict("bad", line, url, problems=[str(error)])
        problems = []
        if link.obsid is None:
            if self.check_obsid:
                problems.append(f"no OBSID (L followed by digits) in the path of {_shorten(url)}")
        elif self.check_obsid and self.obsid is not None and link.obsid != self.obsid:
            problems.append(f"OBSID {link.obsid} differs from the list's {self.obsid}{self._from(self.obsid_line)}")
        if link.site is None:
            if self.check_site:
                problems.append(f"unknown site: host {link.host} is none of {_known_sites()}")
        elif self.check_site and self.site is not None and link.site != self.site:
            problems.append(f"site {link.site} differs from the list's {self.site}{self._from(self.site_line)}")
        if self.pattern is not None:
            if link.subband is None:
                problems.append(f"no subband number matching {self.pattern} in {_shorten(url)}")
            elif link.subband in self.subbands:
                problems.append(f"subband {link.subband} twice, with different URLs"
                                f"{self._from(self.subbands[link.subband])}")
        return _Verdict("bad" if problems else "link", line, url, link, problems)

    def commit(self, verdict: _Verdict) -> None:
        """Record a line; a bad one still sets the references, so later lines are judged against the first."""
        if verdict.kind in ("skip", "duplicate") or verdict.url is None:
            return
        self.seen[verdict.url] = verdict.line
        link = verdict.link
        if link is None:
            return
        if self.obsid is None and link.obsid is not None:
            self.obsid, self.obsid_line = link.obsid, verdict.line
        if self.site is None and link.site is not None:
            self.site, self.site_line = link.site, verdict.line
        if link.subband is not None and self.pattern is not None:
            self.subbands.setdefault(link.subband, verdict.line)
        if verdict.kind == "link":
            self.links.append(link)


def _feed(checker: _Checker, lines: Iterable[str]) -> tuple[list[tuple[int | None, str]], list[str], int]:
    """Run every line through ``checker``: (problems, warnings, duplicates dropped)."""
    problems: list[tuple[int | None, str]] = []
    warnings: list[str] = []
    dropped = 0
    content_lines = 0
    for number, text in enumerate(lines, 1):
        verdict = checker.examine(text, number)
        if verdict.kind != "skip":
            content_lines += 1
        if verdict.kind == "duplicate":
            dropped += 1
            first = checker.seen[verdict.url]
            warnings.append(f"line {number}: duplicate of line {first}, dropped" if first
                            else f"line {number}: duplicate of an earlier link, dropped")
        checker.commit(verdict)
        problems.extend((number, problem) for problem in verdict.problems)
    if content_lines == 0:
        problems.append((None, "no links: the list is empty"))
    return problems, warnings, dropped


def _raise_problems(source: str, problems: Sequence[tuple[int | None, str]]) -> None:
    def one(line: int | None, message: str) -> str:
        return f"line {line}: {message}" if line else message

    if len(problems) == 1:
        raise SrmListError(f"{source}: {one(*problems[0])}", problems)
    listed = [f"  {one(*problem)}" for problem in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        listed.append(f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more")
    raise SrmListError("\n".join([f"{source}: {len(problems)} problems:", *listed]), problems)


def split_lines(text: str) -> list[str]:
    """Lines as an editor numbers them: CRLF, CR or LF, but not the exotic
    separators `str.splitlines` also splits on, which would shift line numbers."""
    return re.split(r"\r\n|\r|\n", text)


def parse_lines(
    lines: Iterable[str],
    *,
    pattern: SubbandPattern | None = DEFAULT_PATTERN,
    check_obsid: bool = True,
    check_site: bool = True,
    source: str = "<srm list>",
) -> ParsedList:
    """Validate the lines of a list; raise one `SrmListError` naming every problem.

    Blank lines and ``#`` comments are skipped, exact duplicates dropped (and
    counted). Every link must name the first link's OBSID, a known site (the
    first link's), a subband matching ``pattern``, and no subband twice.
    ``pattern=None`` skips the subband rules, for lists chunked by other means.
    """
    checker = _Checker(pattern, check_obsid=check_obsid, check_site=check_site)
    problems, warnings, dropped = _feed(checker, lines)
    if problems:
        _raise_problems(source, problems)
    return ParsedList(source, tuple(checker.links), checker.obsid, checker.site, dropped, tuple(warnings))


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_text_file(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The text of a list file, refused with a clear message when it cannot be one."""
    source = os.fspath(path)
    try:
        info = os.stat(source)
        # Checked before opening: opening a FIFO would block forever.
        if not stat.S_ISREG(info.st_mode):
            raise SrmListError(f"{source}: not a regular file")
        if info.st_size > max_bytes:
            raise SrmListError(f"{source}: {info.st_size:,} bytes is too large for an srm list "
                               f"(the limit is {max_bytes:,} bytes)")
        with open(source, "rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as error:
        raise SrmListError(f"{source}: cannot read: {error.strerror or error}") from None
    if len(data) > max_bytes:  # it grew after the stat
        raise SrmListError(f"{source}: more than {max_bytes:,} bytes is too large for an srm list")
    nul = data.find(b"\0")
    if nul >= 0:
        raise SrmListError(f"{source}: not a text file: NUL byte on line {_line_at(data, nul)}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = _line_at(data, error.start)
        raise SrmListError(f"{source}: not UTF-8 text: undecodable byte on line {line}") from None
    return text.removeprefix("\ufeff")  # a byte-order mark from a Windows editor is not part of line 1


def read_srm_file(
    path: str | os.PathLike,
    pattern: SubbandPattern | None = DEFAULT_PATTERN,
    check_site: bool = True,
) -> ParsedList:
    """Read and validate an srm list file (see `parse_lines`); messages start with the path."""
    return parse_lines(split_lines(read_text_file(path)), pattern=pattern, check_site=check_site,
                       source=os.fspath(path))
