"""The classic GRID_LRT names for srm lists, `srmlist` (alias `SrmList`) and `slice_dicts`, as users'
scripts call them, on top of `lrt_workflow.srmlist`'s rules."""

from __future__ import annotations

import os
from typing import Iterable, Iterator, Mapping

from lrt_workflow.srmlist.chunks import _slots, chunk_name
from lrt_workflow.srmlist.links import SrmListError, SubbandPattern, _shorten, parse_link
from lrt_workflow.srmlist.parse import _Checker, _feed, _raise_problems, read_text_file, split_lines


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
