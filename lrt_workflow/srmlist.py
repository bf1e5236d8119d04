"""srm lists: one archive URL per line, all from one observation at one site.

Reading and validating a list, converting its links between the URL forms
that grid tools want (srm, gsiftp, http download, gfal), and cutting it into
chunks of subbands, one chunk per job token. Pure logic: the only I/O is
reading a list from a path.

Two layers share one set of rules:

* the primary API works on immutable values: `parse_link` gives a `Link`,
  `read_srm_file` / `parse_lines` give a `ParsedList`, `chunk` gives
  `Chunk` values, and `missing_ranges` feeds summaries;
* the classic GRID_LRT names that users' scripts already call, `srmlist`
  (alias `SrmList`) and `slice_dicts`, are thin wrappers over it.

A list is checked as a whole: every problem is collected with its line
number and reported in one `SrmListError`, so a user fixes a file in one
pass instead of one error per run.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence, TypeVar

from lrt_workflow.errors import LrtError

__all__ = [
    "SrmListError",
    "Site",
    "SITES",
    "FORMS",
    "SubbandPattern",
    "DEFAULT_PATTERN",
    "Link",
    "ParsedList",
    "Chunk",
    "MAX_FILE_BYTES",
    "normalise_url",
    "parse_link",
    "parse_lines",
    "read_srm_file",
    "read_text_file",
    "split_lines",
    "chunk",
    "chunk_name",
    "missing_ranges",
    "missing_subbands",
    "format_ranges",
    "srmlist",
    "SrmList",
    "slice_dicts",
]

# A real list is a few hundred lines of ~150 bytes; anything this big is a
# wrong file, and reading it whole would only waste memory before failing.
MAX_FILE_BYTES = 20 * 1024 * 1024
# Beyond this a message stops helping; the count of the rest is still given.
MAX_LISTED_PROBLEMS = 20

T = TypeVar("T")


class SrmListError(LrtError):
    """An srm list, a link or a chunking request is wrong.

    ``problems`` keeps every ``(line number or None, message)`` found, so a
    caller can inspect them without parsing the text of the message.
    """

    def __init__(self, message: str, problems: Sequence[tuple[int | None, str]] = ()):
        super().__init__(message)
        self.problems: list[tuple[int | None, str]] = list(problems)


# --- sites and URL forms ----------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One LOFAR archive site: how its host names end, and its three endpoints."""

    name: str
    domain: str  # every host of the site ends with this
    srm: str  # srm endpoint, scheme://host:port
    gsiftp: str  # gsiftp endpoint, scheme://host:port
    http: str  # download prefix; the full srm URL is appended to it

    def owns(self, host: str) -> bool:
        host = host.lower()
        return host == self.domain or host.endswith("." + self.domain)


SITES: dict[str, Site] = {
    site.name: site
    for site in (
        Site("sara", "grid.sara.nl", "srm://srm.grid.sara.nl:8443", "gsiftp://gridftp.grid.sara.nl:2811",
             "https://lofar-download.grid.sara.nl/lofigrid/SRMFifoGet.py?surl="),
        Site("juelich", "fz-juelich.de", "srm://lofar-srm.fz-juelich.de:8443",
             "gsiftp://lofar-gridftp.fz-juelich.de:2811",
             "https://lofar-download.fz-juelich.de/webserver-lofar/SRMFifoGet.py?surl="),
        Site("poznan", "lofar.psnc.pl", "srm://lta-head.lofar.psnc.pl:8443", "gsiftp://gridftp.lofar.psnc.pl:2811",
             "https://lta-download.lofar.psnc.pl/lofigrid/SRMFifoGet.py?surl="),
    )
}

FORMS = ("srm", "gsiftp", "http", "gfal")
# gfal addresses the srm manager explicitly; the file path follows SFN=.
GFAL_INFIX = "/srm/managerv2?SFN="

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_ENDPOINT_URL = re.compile(r"(?P<scheme>srm|gsiftp)://(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>\d+))?(?P<rest>/\S+)",
                           re.IGNORECASE)
_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d+)?/[^?\s]*\?surl=(?P<inner>\S+)", re.IGNORECASE)
# Not preceded by a letter or digit, so 'XL12' or 'lofar' never count.
_OBSID = re.compile(r"(?<![A-Za-z0-9])L\d+")
# Real lists carry 'srm://host:8443//pnfs/...'; the ':' guard keeps 'srm://pnfs.host' intact.
_DOUBLE_PNFS = re.compile(r"(?<!:)//+(?=pnfs(?:/|$))")


def _site_of(host: str) -> Site | None:
    return next((site for site in SITES.values() if site.owns(host)), None)


def _known_sites() -> str:
    return ", ".join(f"{site.name} (*{site.domain})" for site in SITES.values())


def _shorten(text: str, limit: int = 160) -> str:
    """Quote user text in a message without letting a huge line swamp it."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


# --- subband pattern --------------------------------------------------------------


@dataclass(frozen=True)
class SubbandPattern:
    """How a subband number is written in a link: ``prefix``, digits, then ``suffix``.

    ``prefix`` is literal text, so 'ABN_' needs no escaping. ``suffix`` is a
    regular expression fragment, because real lists end the number with
    different characters: '_' in ``SB100_uv.MS``, '.' in ``_SB216.tar``; the
    default ``[_.]`` accepts both. Digits may be any width (SB7, SB0244).
    When a path holds several matches, the last one counts: the file name is
    the most specific part of the path.
    """

    prefix: str = "SB"
    suffix: str = "[_.]"
    regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = re.compile(re.escape(self.prefix) + r"(?P<subband>\d+)(?:" + self.suffix + ")")
        except re.error as error:
            raise SrmListError(f"subband suffix {self.suffix!r} is not a valid regular expression: {error}") from None
        object.__setattr__(self, "regex", compiled)

    def find(self, path: str) -> str | None:
        """The subband digits as written (e.g. '0244'), or None."""
        found = None
        for found in self.regex.finditer(path):
            pass
        return found["subband"] if found else None

    def __str__(self) -> str:
        return f"{self.prefix}<digits>{self.suffix}"


DEFAULT_PATTERN = SubbandPattern()


# --- one link ---------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """One archive file, parsed once: its URL as given and what the URL says.

    ``form`` is which of `FORMS` the URL is written in; ``path`` the file's
    path on the site (the same in every form), ``host`` the storage host the
    site was recognised by. The conversion properties render the link with
    the site's standard endpoints, so converting between forms round-trips.
    """

    url: str
    site: str | None
    obsid: str | None
    subband: int | None
    subband_text: str | None
    form: str
    host: str
    path: str

    def to(self, form: str) -> str:
        """This link written in ``form`` (one of `FORMS`)."""
        if form not in FORMS:
            raise SrmListError(f"unknown link form {form!r}; use one of {', '.join(FORMS)}")
        if self.site is None:
            raise SrmListError(f"{self.url}: unknown site (host {self.host}), cannot convert to the {form} form")
        site = SITES[self.site]
        if form == "srm":
            return site.srm + self.path
        if form == "gsiftp":
            return site.gsiftp + self.path
        if form == "http":
            return site.http + site.srm + self.path
        return site.srm + GFAL_INFIX + self.path

    @property
    def srm(self) -> str:
        """For srm tools (srmls, staging)."""
        return self.to("srm")

    @property
    def gsiftp(self) -> str:
        """For globus-url-copy and uberftp."""
        return self.to("gsiftp")

    @property
    def http(self) -> str:
        """For plain download with wget or curl."""
        return self.to("http")

    @property
    def gfal(self) -> str:
        """For gfal staging and stat tools."""
        return self.to("gfal")


def normalise_url(text: str) -> str:
    """Strip whitespace and line ends, and repair the ``//pnfs`` real lists contain."""
    return _DOUBLE_PNFS.sub("/", text.strip())


def _split_url(text: str) -> tuple[str, str, str] | None:
    """(form, host, path) of a URL in one of the known forms, else None."""
    http = _HTTP_URL.fullmatch(text)
    if http:
        inner = _split_url(http["inner"])
        return ("http", inner[1], inner[2]) if inner and inner[0] == "srm" else None
    match = _ENDPOINT_URL.fullmatch(text)
    if not match:
        return None
    scheme, host, rest = match["scheme"].lower(), match["host"], match["rest"]
    if scheme == "srm" and rest.startswith(GFAL_INFIX):
        path = rest[len(GFAL_INFIX):]
        return ("gfal", host, path) if path.startswith("/") and len(path) > 1 else None
    return scheme, host, rest


def parse_link(text: str, pattern: SubbandPattern | None = DEFAULT_PATTERN) -> Link:
    """Parse one URL (after `normalise_url`); raise `SrmListError` if it is not one.

    Only the URL's syntax is checked here; whether its OBSID, site and
    subband fit a list is for the list to decide. With ``pattern=None`` no
    subband is looked for.
    """
    url = normalise_url(text)
    parts = _split_url(url)
    if parts is None:
        raise SrmListError(f"not an srm, gsiftp, https (SRMFifoGet) or gfal URL: {_shorten(url)}")
    form, host, path = parts
    site = _site_of(host)
    obsid = _OBSID.search(path)
    subband_text = pattern.find(path) if pattern is not None else None
    return Link(
        url=url,
        site=site.name if site else None,
        obsid=obsid.group(0) if obsid else None,
        subband=int(subband_text) if subband_text is not None else None,
        subband_text=subband_text,
        form=form,
        host=host,
        path=path,
    )


# --- a whole list -----------------------------------------------------------------


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

    Some lists carry a second field (a size, a checksum) beside the URL:
    keep the one field that is a URL.
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
    raise SrmListError(f"{len(urls)} URLs on one line, expected one: {_shorten(line)}")


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


# --- chunks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """The links of ``size`` consecutive subband slots from ``start``, in subband order."""

    name: str
    start: int
    links: tuple[Link, ...]

    @property
    def subbands(self) -> list[int]:
        return [link.subband for link in self.links]


def chunk_name(start: int) -> str:
    """A chunk's name: its first slot, at least 3 digits, as token ids expect ('000', '100', '1000')."""
    return f"{start:03d}"


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise SrmListError(f"chunk size must be a whole number of at least 1, not {size!r}")
    return size


def _slots(items: Iterable[tuple[int, T]], size: int) -> list[tuple[int, list[T]]]:
    """Group (subband, item) by slot: anchored at the lowest subband, ``size`` wide.

    Holes stay holes and empty slots are never made, so the work is linear in
    the number of items however sparse the subbands are.
    """
    _check_size(size)
    ordered = sorted(items, key=lambda item: item[0])  # stable: equal subbands keep their order
    if not ordered:
        return []
    low = ordered[0][0]
    groups: dict[int, list[T]] = {}
    for number, item in ordered:
        groups.setdefault(low + (number - low) // size * size, []).append(item)
    return list(groups.items())  # in numeric order, because ``ordered`` is


def chunk(links: Iterable[Link], size: int) -> list[Chunk]:
    """Cut links into chunks of ``size`` subband slots, ordered by start.

    Chunk k covers subbands [low + k*size, low + (k+1)*size), low being the
    lowest subband; a chunk with no links is left out.
    """
    pairs = []
    for link in links:
        if link.subband is None:
            raise SrmListError(f"{link.url}: no subband number, so it cannot be put in a chunk")
        pairs.append((link.subband, link))
    return [Chunk(chunk_name(start), start, tuple(members)) for start, members in _slots(pairs, size)]


def missing_ranges(links: Iterable[Link | int]) -> list[tuple[int, int]]:
    """The holes between the lowest and highest subband, as inclusive (first, last) ranges."""
    numbers = sorted({item if isinstance(item, int) else item.subband for item in links} - {None})
    return [(a + 1, b - 1) for a, b in zip(numbers, numbers[1:]) if b - a > 1]


def missing_subbands(links: Iterable[Link | int]) -> list[int]:
    """Every missing subband number; prefer `missing_ranges` when the holes may be huge."""
    return [n for first, last in missing_ranges(links) for n in range(first, last + 1)]


def format_ranges(ranges: Iterable[tuple[int, int]]) -> str:
    """'109, 120-123' for [(109, 109), (120, 123)]; '' for none."""
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


# --- the classic API ----------------------------------------------------------------


class srmlist(list):  # noqa: N801 - the name users' scripts import
    """A list of srm link strings from one observation at one site (GRID_LRT's API).

    Every link added through `append`, `extend`, ``+=`` or `from_file` is
    normalised and checked against the first one: same OBSID (unless
    ``check_OBSID`` is off), same known site (unless ``check_location`` is
    off). Exact duplicates are not added, only counted in
    ``duplicates_dropped``. Subbands are not checked here, since their
    pattern is only known when `sbn_dict` is called. Other list methods
    (``insert``, item assignment) add without checks, as lists do.
    """

    def __init__(self, check_OBSID: bool = True, check_location: bool = True, link: str | None = None):  # noqa: N803
        super().__init__()
        self.checkobsid = check_OBSID
        self._check_location = check_location
        self.duplicates_dropped = 0
        self._checker = self._new_checker()
        self._synced: tuple[int, str | None] = (0, None)
        if link:
            self.append(link)

    def _new_checker(self) -> _Checker:
        return _Checker(None, check_obsid=self.checkobsid, check_site=self._check_location)

    def _mark(self) -> tuple[int, str | None]:
        return len(self), (self[-1] if self else None)

    def _state(self) -> _Checker:
        """The checker, rebuilt when plain list methods changed the list (pop, remove, del, insert).

        Otherwise a popped link would still count as seen, and appending it
        again would be dropped as a duplicate.
        """
        if self._synced != self._mark():
            checker = self._new_checker()
            for url in self:
                checker.commit(checker.examine(url))
            self._checker = checker
            self._synced = self._mark()
        return self._checker

    @property
    def obsid(self) -> str | None:
        """The OBSID of the first link, e.g. 'L229507'."""
        return self._state().obsid

    @property
    def lta_location(self) -> str | None:
        """The site of the first link on a known site: 'sara', 'juelich' or 'poznan'."""
        return self._state().site

    LTA_location = lta_location

    def append(self, link: str) -> None:
        """Add one link (a line of a list: blank and comment lines are ignored)."""
        checker = self._state()
        verdict = checker.examine(str(link))
        if verdict.problems:
            raise SrmListError(f"{_shorten(str(link).strip())}: {'; '.join(verdict.problems)}",
                               [(None, problem) for problem in verdict.problems])
        if verdict.kind == "duplicate":
            self.duplicates_dropped += 1
        checker.commit(verdict)
        if verdict.kind == "link":
            super().append(verdict.url)
        self._synced = self._mark()

    def extend(self, links: Iterable[str]) -> None:
        for link in links:
            self.append(link)

    def __iadd__(self, links: Iterable[str]) -> srmlist:
        self.extend(links)
        return self

    def from_file(self, filename: str | os.PathLike) -> srmlist:
        """Add every link of a file, or none: all problems are raised together, with line numbers."""
        checker = self._state().copy()
        kept = len(checker.links)
        problems, _, dropped = _feed(checker, split_lines(read_text_file(filename)))
        if problems:
            _raise_problems(os.fspath(filename), problems)
        self._checker = checker
        self.duplicates_dropped += dropped
        super().extend(link.url for link in checker.links[kept:])
        self._synced = self._mark()
        return self

    # Conversions of one link. Each link is converted by its own site, not the
    # list's, so a list built with check_location=False still converts right.

    def srm_replace(self, link: str) -> str:
        return parse_link(link, None).srm

    def gsi_replace(self, link: str) -> str:
        return parse_link(link, None).gsiftp

    def http_replace(self, link: str) -> str:
        return parse_link(link, None).http

    def gfal_replace(self, link: str) -> str:
        return parse_link(link, None).gfal

    def gsi_links(self) -> Iterator[str]:
        """The links as gsiftp URLs, in list order."""
        return (self.gsi_replace(link) for link in list(self))

    def http_links(self) -> Iterator[str]:
        """The links as http download URLs, in list order."""
        return (self.http_replace(link) for link in list(self))

    def gfal_links(self) -> Iterator[str]:
        """The links as gfal URLs, in list order."""
        return (self.gfal_replace(link) for link in list(self))

    def sbn_dict(self, pref: str = "SB", suff: str = "[_.]") -> Iterator[tuple[str, srmlist]]:
        """(subband as written, one-link srmlist) pairs, sorted by subband number.

        ``pref`` is literal text, ``suff`` a regular expression fragment (see
        `SubbandPattern`); the default suffix takes both 'SB100_' and 'SB216.'.
        Every link without a subband, and every subband given twice with
        different URLs, is reported in one `SrmListError` before anything is
        yielded.
        """
        pattern = SubbandPattern(pref, suff)
        found: dict[int, tuple[str, str, int]] = {}
        problems: list[tuple[int | None, str]] = []
        for index, url in enumerate(self, 1):
            link = parse_link(url, pattern)
            if link.subband is None:
                problems.append((None, f"link {index}: no subband number matching {pattern} in {_shorten(url)}"))
            elif link.subband in found:
                problems.append((None, f"link {index}: subband {link.subband} twice, with different URLs "
                                       f"(link {found[link.subband][2]})"))
            else:
                found[link.subband] = (link.subband_text, url, index)
        if problems:
            _raise_problems("srmlist", problems)
        for number in sorted(found):
            text, url, _ = found[number]
            yield text, srmlist(self.checkobsid, self._check_location, url)


SrmList = srmlist


def slice_dicts(
    srmdict: Mapping[str, Iterable[str] | str] | Iterable[tuple[str, Iterable[str] | str]],
    slice_size: int = 10,
) -> dict[str, srmlist]:
    """Group subbands into chunks: ``{chunk name: srmlist}``, in numeric chunk order.

    ``srmdict`` maps subband strings (any width, e.g. '0244') to a link or
    links, like `srmlist.sbn_dict`'s pairs. Slots are anchored at the lowest
    subband, ``slice_size`` wide; a missing subband leaves a hole, empty
    chunks are left out (the rules of `chunk`).
    """
    pairs = srmdict.items() if isinstance(srmdict, Mapping) else srmdict
    items: list[tuple[int, list[str]]] = []
    for key, value in pairs:
        if not str(key).isdigit():
            raise SrmListError(f"subband {key!r} is not a number")
        items.append((int(str(key)), [value] if isinstance(value, str) else list(value)))
    sliced: dict[str, srmlist] = {}
    for start, members in _slots(items, slice_size):
        # The links were checked when they were listed; only their syntax is checked again.
        links = srmlist(check_OBSID=False, check_location=False)
        for urls in members:
            links.extend(urls)
        sliced[chunk_name(start)] = links
    return sliced
