"""Cutting a list's links into chunks of subbands, one chunk per job token, and finding its holes. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, TypeVar

from lrt_workflow.srmlist.links import Link, SrmListError
from lrt_workflow.srmlist.parse import ParsedList

T = TypeVar("T")


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


def chunk_plan(links: Iterable[Link], size: int | None) -> list[dict]:
    """The chunks of a list's links as plain data, for a file: name, first slot and the URLs, in order."""
    return plan_chunks(((link.subband, link.url) for link in links), size)


def plan_chunks(items: Iterable[tuple[int, str]], size: int | None) -> list[dict]:
    """Chunks of (subband, URL) pairs as plain data; ``size`` None puts them all in one chunk,
    named by the lowest subband."""
    items = list(items)
    if size is None:
        size = max(number for number, _ in items) - min(number for number, _ in items) + 1 if items else 1
    return [{"name": chunk_name(start), "start": start, "links": urls} for start, urls in _slots(items, size)]


def summarise(parsed: ParsedList) -> dict:
    """What a list holds: OBSID, site, files, subband range and holes (as ranges, so a list of SB0
    and SB999999 gives a short answer, not a million numbers), duplicates dropped and warnings."""
    subbands = sorted(link.subband for link in parsed.links if link.subband is not None)
    holes = missing_ranges(subbands)
    return {
        "srm_file": parsed.source,
        "obsid": parsed.obsid,
        "site": parsed.site,
        "files": len(parsed.links),
        "subbands": {"first": subbands[0], "last": subbands[-1]} if subbands else None,
        "missing": format_ranges(holes),
        "missing_ranges": [list(hole) for hole in holes],
        "missing_count": sum(last - first + 1 for first, last in holes),
        "duplicates_dropped": parsed.duplicates_dropped,
        "warnings": list(parsed.warnings),
    }
