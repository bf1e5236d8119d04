"""One link of an srm list: the LOFAR archive sites, the URL forms, and how a link is read. Pure.

A link is parsed once into a `Link`, which knows its site, OBSID and subband
and renders itself in each form grid tools want: srm, gsiftp, http download
and gfal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from lrt_workflow.errors import LrtError


class SrmListError(LrtError):
    """An srm list, a link or a chunking request is wrong.

    ``problems`` keeps every ``(line number or None, message)`` found, so a
    caller can inspect them without parsing the text of the message.
    """

    def __init__(self, message: str, problems: Sequence[tuple[int | None, str]] = ()):
        super().__init__(message)
        self.problems: list[tuple[int | None, str]] = list(problems)


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


def find_obsid(text: str) -> str | None:
    """The first OBSID (``L`` and digits, not inside a word) in ``text``, or None."""
    match = _OBSID.search(text)
    return match.group(0) if match else None


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


def is_archive_link(url: str) -> bool:
    """Whether ``url`` is written in one of the archive's forms (srm, gsiftp, http download, gfal)."""
    return _split_url(url) is not None


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
    subband_text = pattern.find(path) if pattern is not None else None
    return Link(
        url=url,
        site=site.name if site else None,
        obsid=find_obsid(path),
        subband=int(subband_text) if subband_text is not None else None,
        subband_text=subband_text,
        form=form,
        host=host,
        path=path,
    )
