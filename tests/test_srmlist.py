"""srm lists: parsing, validation, conversions and chunking (lrt_workflow.srmlist).

Expected values are written out by hand from the fixtures and the site table
of the PiCaS contract, never computed by the code under test.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrt_workflow.errors import LrtError
from lrt_workflow.srmlist import (
    MAX_FILE_BYTES,
    Link,
    SrmList,
    SrmListError,
    SubbandPattern,
    chunk,
    format_ranges,
    missing_ranges,
    missing_subbands,
    parse_link,
    parse_lines,
    read_srm_file,
    slice_dicts,
    srmlist,
)

DATA = Path(__file__).parent / "data" / "srm"
SRM_50 = DATA / "srm_50_sara.txt"
CAL1 = DATA / "cal1_srm_test.txt"
DYSCO = DATA / "dysco_test.txt"
SRM_1 = DATA / "srm_1_sara.txt"
ABN = SubbandPattern(prefix="ABN_", suffix=r"\.")

SARA_SRM = "srm://srm.grid.sara.nl:8443"


def sara(subband: str | int, obsid: str = "L229507", host: str = SARA_SRM, tail: str = "_uv.MS.tar") -> str:
    return f"{host}/pnfs/grid.sara.nl/data/lofar/ops/{obsid}/{obsid}_SB{subband}{tail}"


def write(tmp_path: Path, lines: list[str], name: str = "srm.txt") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def error_of(path: Path, **kwargs) -> SrmListError:
    with pytest.raises(SrmListError) as caught:
        read_srm_file(path, **kwargs)
    return caught.value


# --- the real lists -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, pattern, count, obsid, first, last",
    [
        (SRM_50, SubbandPattern(), 51, "L229507", 100, 150),
        (CAL1, SubbandPattern(), 320, "L261539", 0, 319),
        (DYSCO, ABN, 25, "L640667", 104, 344),
        (SRM_1, SubbandPattern(), 1, "L229507", 100, 100),
    ],
)
def test_fixture_lists(path, pattern, count, obsid, first, last):
    parsed = read_srm_file(path, pattern=pattern)
    assert len(parsed.links) == count
    assert parsed.obsid == obsid
    assert parsed.site == "sara"
    assert parsed.duplicates_dropped == 0
    assert all(link.obsid == obsid and link.site == "sara" for link in parsed.links)
    assert min(link.subband for link in parsed.links) == first
    assert max(link.subband for link in parsed.links) == last
    # Links come back exactly as the file's lines, in file order.
    assert [link.url for link in parsed.links] == [line for line in path.read_text().split("\n") if line]


@pytest.mark.parametrize("path, count, obsid", [(SRM_50, 51, "L229507"), (CAL1, 320, "L261539"),
                                                (DYSCO, 25, "L640667"), (SRM_1, 1, "L229507")])
def test_fixture_lists_through_the_classic_api(path, count, obsid):
    links = srmlist().from_file(str(path))
    assert len(links) == count
    assert links.obsid == obsid
    assert links.lta_location == "sara"
    assert all("\n" not in link and "\r" not in link for link in links)


def test_srm_50_chunks_of_1_and_of_10():
    links = read_srm_file(SRM_50).links
    ones = chunk(links, 1)
    assert len(ones) == 51
    assert [c.name for c in ones] == [str(n) for n in range(100, 151)]
    assert all(len(c.links) == 1 for c in ones)
    tens = chunk(links, 10)
    assert [c.name for c in tens] == ["100", "110", "120", "130", "140", "150"]
    assert [len(c.links) for c in tens] == [10, 10, 10, 10, 10, 1]
    assert tens[0].links[0].url.endswith("L229507_SB100_uv.dppp.MS_3d78b8f1.tar")


def test_srm_50_through_slice_dicts():
    links = srmlist().from_file(str(SRM_50))
    assert len(slice_dicts(links.sbn_dict(), 1)) == 51
    sliced = slice_dicts(links.sbn_dict(), 10)
    assert list(sliced) == ["100", "110", "120", "130", "140", "150"]
    assert len(sliced["150"]) == 1 and sliced["150"][0].endswith("L229507_SB150_uv.dppp.MS_f6fc7fc5.tar")
    assert all(isinstance(value, srmlist) for value in sliced.values())


def test_cal1_in_chunks_of_10_and_its_trailing_blank_line_is_skipped():
    assert CAL1.read_bytes().endswith(b".tar\n\n")  # the fixture really has the blank line
    parsed = read_srm_file(CAL1)
    assert len(parsed.links) == 320
    chunks = chunk(parsed.links, 10)
    assert len(chunks) == 32
    assert chunks[0].name == "000" and chunks[-1].name == "310"
    assert all(len(c.links) == 10 for c in chunks)
    assert chunks[0].subbands == list(range(10))
    assert len(slice_dicts(srmlist().from_file(str(CAL1)).sbn_dict(), 10)) == 32


def test_dysco_needs_its_own_pattern_and_chunks_from_104_by_25():
    chunks = chunk(read_srm_file(DYSCO, pattern=ABN).links, 25)
    assert len(chunks) == 10
    assert [c.name for c in chunks[:2]] == ["104", "129"]
    # 104, 114, 124 fall in [104, 129); 134, 144 in [129, 154)
    assert chunks[0].subbands == [104, 114, 124]
    assert chunks[1].subbands == [134, 144]

    sliced = slice_dicts(srmlist().from_file(str(DYSCO)).sbn_dict(pref="ABN_", suff=r"\."), 25)
    assert len(sliced) == 10
    assert list(sliced)[:2] == ["104", "129"]


def test_dysco_with_the_default_pattern_reports_every_line():
    error = error_of(DYSCO)
    assert str(error).startswith(f"{DYSCO}: 25 problems:")
    assert "line 1: no subband number matching SB<digits>[_.]" in str(error)
    assert "... and 5 more" in str(error)
    assert [line for line, _ in error.problems] == list(range(1, 26))


# --- subband numbers and chunks -----------------------------------------------------------


def links_for(subbands, **kwargs) -> list[Link]:
    return [parse_link(sara(n, **kwargs)) for n in subbands]


def test_a_missing_subband_leaves_a_hole():
    chunks = chunk(links_for(n for n in range(100, 121) if n != 109), 10)
    assert [(c.name, len(c.links)) for c in chunks] == [("100", 9), ("110", 10), ("120", 1)]
    assert 109 not in chunks[0].subbands and chunks[1].start == 110


def test_chunks_are_anchored_at_the_lowest_subband():
    chunks = chunk(links_for(range(103, 131)), 10)
    assert [c.name for c in chunks] == ["103", "113", "123"]
    assert chunks[0].subbands == list(range(103, 113))


def test_empty_chunks_are_dropped():
    chunks = chunk(links_for([100, 101, 150]), 10)
    assert [c.name for c in chunks] == ["100", "150"]


def test_four_digit_subbands():
    chunks = chunk(links_for(range(1000, 1025)), 10)
    assert [c.name for c in chunks] == ["1000", "1010", "1020"]
    assert [len(c.links) for c in chunks] == [10, 10, 5]


def test_mixed_widths_sort_numerically(tmp_path):
    path = write(tmp_path, [sara("1000"), sara("0244"), sara("7")])
    parsed = read_srm_file(path)
    assert sorted(link.subband for link in parsed.links) == [7, 244, 1000]
    chunks = chunk(parsed.links, 100)
    # slots from 7: [7, 107) holds 7; 244 in [207, 307); 1000 in [907, 1007)
    assert [(c.name, c.subbands) for c in chunks] == [("007", [7]), ("207", [244]), ("907", [1000])]
    classic = srmlist().from_file(str(path))
    assert [name for name, _ in classic.sbn_dict()] == ["7", "0244", "1000"]
    assert list(slice_dicts(classic.sbn_dict(), 100)) == ["007", "207", "907"]
    assert list(slice_dicts(classic.sbn_dict(), 1000)) == ["007"]


def test_chunk_names_have_at_least_three_digits():
    assert [c.name for c in chunk(links_for([0, 5, 12]), 1)] == ["000", "005", "012"]


@pytest.mark.parametrize("size", [0, -1, 2.5, True, "10"])
def test_chunk_size_must_be_a_positive_whole_number(size):
    with pytest.raises(SrmListError, match="chunk size"):
        chunk(links_for([1, 2]), size)
    with pytest.raises(SrmListError, match="chunk size"):
        slice_dicts({"001": sara("001")}, size)


def test_chunking_needs_a_subband_on_every_link():
    with pytest.raises(SrmListError, match="no subband"):
        chunk([parse_link(sara("100"), pattern=None)], 10)


def test_slice_dicts_refuses_keys_that_are_not_numbers():
    with pytest.raises(SrmListError, match="'abc' is not a number"):
        slice_dicts({"abc": sara("100")})


def test_missing_subbands_as_ranges():
    links = links_for([*range(100, 109), *range(110, 120), 124])
    assert missing_ranges(links) == [(109, 109), (120, 123)]
    assert missing_subbands(links) == [109, 120, 121, 122, 123]
    assert format_ranges(missing_ranges(links)) == "109, 120-123"
    assert missing_ranges(links_for(range(5))) == [] and format_ranges([]) == ""
    assert missing_ranges([0, 1_000_000_000]) == [(1, 999_999_999)]  # stays short however sparse


@pytest.mark.parametrize(
    "path, subband",
    [
        ("/L1/L1_SB123_uv.MS", 123),
        ("/L1/L1_SB123.MS", 123),
        ("/L1/instruments_L1_SB216.tar", 216),
        ("/L1/L1_SB7_x.tar", 7),
        ("/L1/L1_SB0244_x.tar", 244),
        ("/SB001_dir/L1_SB002_x.tar", 2),  # the file name, the last match, wins
        ("/L1/L1_SB123x.tar", None),
        ("/L1/L1_sb123_x.tar", None),
    ],
)
def test_default_subband_pattern(path, subband):
    assert parse_link(SARA_SRM + "/pnfs/grid.sara.nl" + path).subband == subband


def test_subband_text_keeps_the_width_as_written():
    link = parse_link(sara("0244"))
    assert (link.subband, link.subband_text) == (244, "0244")


def test_pattern_prefix_is_literal_and_suffix_is_a_regex():
    assert SubbandPattern("S.B", "_").find("/x_S.B12_y") == "12"
    assert SubbandPattern("S.B", "_").find("/x_SXB12_y") is None
    assert SubbandPattern("ABN_", r"\.").find("/GSM_CAL_L640667_ABN_314.tar.gz") == "314"
    assert SubbandPattern("ABN_", r"\.").find("/GSM_CAL_L640667_ABN_314_x") is None
    with pytest.raises(SrmListError, match="not a valid regular expression"):
        SubbandPattern("SB", "[_")


@settings(max_examples=300, deadline=None)
@given(
    entries=st.dictionaries(st.integers(0, 20_000), st.integers(1, 6), min_size=1, max_size=80),
    size=st.integers(1, 3000),
)
def test_chunking_loses_nothing_and_puts_each_link_in_its_slot(entries, size):
    # entries: subband -> how many digits it is written with (zero padded; never fewer than it needs)
    urls = {sara(f"{n:0{width}d}"): n for n, width in entries.items()}
    links = [parse_link(url) for url in urls]
    chunks = chunk(links, size)

    placed = [link.url for c in chunks for link in c.links]
    assert sorted(placed) == sorted(urls)  # nothing lost, nothing twice
    low = min(entries)
    for c in chunks:
        assert c.links, "empty chunks are dropped"
        assert (c.start - low) % size == 0
        assert all(c.start <= urls[link.url] < c.start + size for link in c.links)
        assert [urls[link.url] for link in c.links] == sorted(urls[link.url] for link in c.links)
        assert int(c.name) == c.start and len(c.name) >= 3
    starts = [int(c.name) for c in chunks]
    assert starts == sorted(set(starts))

    # The classic slice_dicts groups the same way.
    classic = slice_dicts({f"{n:0{w}d}": sara(f"{n:0{w}d}") for n, w in entries.items()}, size)
    assert list(classic) == [c.name for c in chunks]
    assert [list(v) for v in classic.values()] == [[link.url for link in c.links] for c in chunks]


# --- line rules -------------------------------------------------------------------------


def test_crlf_line_ends_are_stripped(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(f"{sara(100)}\r\n{sara(101)}\r\n\r\n".encode())
    parsed = read_srm_file(path)
    assert [link.url for link in parsed.links] == [sara(100), sara(101)]
    assert list(srmlist().from_file(str(path))) == [sara(100), sara(101)]


def test_double_slash_pnfs_is_repaired(tmp_path):
    broken = sara(100).replace(":8443/pnfs", ":8443//pnfs")
    assert "//pnfs" in broken
    path = write(tmp_path, [broken, sara(101)])
    assert [link.url for link in read_srm_file(path).links] == [sara(100), sara(101)]
    assert srmlist(link=broken)[0] == sara(100)
    # The same file written both ways is one file.
    parsed = read_srm_file(write(tmp_path, [broken, sara(100)], "both.txt"))
    assert len(parsed.links) == 1 and parsed.duplicates_dropped == 1


def test_other_double_slashes_are_kept():
    # dysco_test.txt has 'L640667//GSM_...': only //pnfs is a known defect to repair.
    url = "gsiftp://gridftp.grid.sara.nl:2811/pnfs/grid.sara.nl/L640667//GSM_CAL_L640667_ABN_314.tar.gz"
    assert parse_link(url).url == url


def test_two_field_lines_keep_the_url(tmp_path):
    path = write(tmp_path, [f"{sara(100)} 1234567", f"d41d8cd98f00b204  {sara(101)}", f"\t{sara(102)}\t# note"])
    assert [link.url for link in read_srm_file(path).links] == [sara(100), sara(101), sara(102)]


def test_two_archive_links_on_one_line_are_a_problem(tmp_path):
    error = error_of(write(tmp_path, [sara(100), f"{sara(101)} {sara(102)}"]))
    assert "line 2: 2 archive links on one line" in str(error)


def test_a_copy_job_line_keeps_its_archive_link(tmp_path):
    # srm-copy job files: the archive link and where to copy it, on one line, either way round
    lines = [f"{sara(100)} file:///data/L229507/SB100.tar", f"file:///data/L229507/SB101.tar {sara(101)}"]
    parsed = read_srm_file(write(tmp_path, lines))
    assert parsed.urls == [sara(100), sara(101)]


def test_a_line_of_urls_none_of_them_an_archive_link_is_a_problem(tmp_path):
    error = error_of(write(tmp_path, [sara(100), "file:///a/L229507_SB101.tar file:///b/L229507_SB101.tar"]))
    assert "line 2: 2 URLs on one line and none is an archive link" in str(error)


def test_comments_and_blank_lines_are_skipped(tmp_path):
    path = write(tmp_path, ["# made by hand", "", sara(100), "   ", "  # indented comment", sara(101), ""])
    parsed = read_srm_file(path)
    assert [link.url for link in parsed.links] == [sara(100), sara(101)]
    assert parsed.warnings == ()


def test_duplicates_are_dropped_and_counted(tmp_path):
    path = write(tmp_path, [sara(100), sara(101), sara(100) + "   ", sara(102), sara(100), sara(101)])
    parsed = read_srm_file(path)
    assert [link.subband for link in parsed.links] == [100, 101, 102]
    assert parsed.duplicates_dropped == 3
    assert parsed.warnings == ("line 3: duplicate of line 1, dropped", "line 5: duplicate of line 1, dropped",
                               "line 6: duplicate of line 2, dropped")
    classic = srmlist().from_file(str(path))
    assert len(classic) == 3 and classic.duplicates_dropped == 3


def test_a_bom_does_not_spoil_the_first_line(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + f"{sara(100)}\n".encode())
    assert read_srm_file(path).links[0].url == sara(100)


# --- every problem, with its line number ---------------------------------------------------


def test_no_obsid(tmp_path):
    error = error_of(write(tmp_path, [sara(100), sara(101).replace("L229507", "obs229507")]))
    assert "line 2: no OBSID" in str(error)
    assert error.problems == [(2, error.problems[0][1])]


def test_a_different_obsid(tmp_path):
    error = error_of(write(tmp_path, [sara(100), sara(101), sara(102, obsid="L999999")]))
    assert "line 3: OBSID L999999 differs from the list's L229507 (line 1)" in str(error)


def test_lowercase_or_embedded_l_is_not_an_obsid():
    assert parse_link(f"{SARA_SRM}/pnfs/grid.sara.nl/lofar/lc2_038/XL12_SB1_x").obsid is None
    assert parse_link(f"{SARA_SRM}/pnfs/grid.sara.nl/lofar/lc2_038/229507/L229507_SB1_x").obsid == "L229507"


def test_an_unknown_site(tmp_path):
    path = write(tmp_path, [sara(100), sara(101, host="srm://srm.example.org:8443")])
    error = error_of(path)
    assert "line 2: unknown site: host srm.example.org" in str(error)
    assert "sara" in str(error) and "juelich" in str(error) and "poznan" in str(error)
    assert len(read_srm_file(path, check_site=False).links) == 2


def test_an_unknown_site_as_the_first_line(tmp_path):
    error = error_of(write(tmp_path, [sara(100, host="srm://srm.example.org:8443"), sara(101)]))
    assert [line for line, _ in error.problems] == [1]


def test_mixed_sites(tmp_path):
    juelich = sara(101, host="srm://lofar-srm.fz-juelich.de:8443")
    path = write(tmp_path, [sara(100), juelich, sara(102)])
    error = error_of(path)
    assert "line 2: site juelich differs from the list's sara (line 1)" in str(error)
    assert [line for line, _ in error.problems] == [2]
    parsed = read_srm_file(path, check_site=False)
    assert [link.site for link in parsed.links] == ["sara", "juelich", "sara"]


def test_no_subband_number(tmp_path):
    error = error_of(write(tmp_path, [sara(100), sara("X1"), sara(102)]))
    assert "line 2: no subband number matching SB<digits>[_.]" in str(error)


def test_the_same_subband_twice_with_different_urls(tmp_path):
    error = error_of(write(tmp_path, [sara(100), sara(101), sara("0101", tail="_other.tar")]))
    assert "line 3: subband 101 twice, with different URLs (line 2)" in str(error)


@pytest.mark.parametrize(
    "bad",
    ["hello", "ftp://ftp.grid.sara.nl/pnfs/L229507_SB101_x", "/pnfs/grid.sara.nl/L229507_SB101_x",
     "srm://srm.grid.sara.nl:8443", "https://example.org/download?file=L229507_SB101_x", "just some words"],
)
def test_a_line_that_is_not_a_url(tmp_path, bad):
    error = error_of(write(tmp_path, [sara(100), bad, sara(102)]))
    assert [line for line, _ in error.problems] == [2]
    assert "line 2: not a" in str(error)


@pytest.mark.parametrize("lines", [[], [""], ["", "  ", "# only a comment"]])
def test_an_empty_list(tmp_path, lines):
    path = write(tmp_path, lines)
    error = error_of(path)
    assert str(error) == f"{path}: no links: the list is empty"
    with pytest.raises(SrmListError, match="empty"):
        srmlist().from_file(str(path))


def test_a_file_with_nul_bytes(tmp_path):
    path = tmp_path / "binary.txt"
    path.write_bytes(f"{sara(100)}\n{sara(101)}\n".encode() + b"\x00\x01\x02")
    error = error_of(path)
    assert str(error) == f"{path}: not a text file: NUL byte on line 3"


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(f"{sara(100)}\n".encode() + "café\n".encode("latin-1"))
    assert str(error_of(path)) == f"{path}: not UTF-8 text: undecodable byte on line 2"


def test_an_absurdly_large_file(tmp_path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    error = error_of(path)
    assert str(error).startswith(f"{path}: {MAX_FILE_BYTES + 1:,} bytes is too large")


def test_a_missing_file_and_a_folder(tmp_path):
    assert str(error_of(tmp_path / "nope.txt")) == f"{tmp_path / 'nope.txt'}: cannot read: No such file or directory"
    assert str(error_of(tmp_path)) == f"{tmp_path}: not a regular file"


def test_all_problems_are_reported_at_once(tmp_path):
    path = write(tmp_path, [sara(100), "not a url", sara(102), sara(103, obsid="L1"), sara(104),
                            sara(105, host="srm://srm.example.org:8443"), sara(106)])
    error = error_of(path)
    message = str(error)
    assert message.startswith(f"{path}: 3 problems:\n")
    assert "line 2: not a URL" in message
    assert "line 4: OBSID L1 differs" in message
    assert "line 6: unknown site" in message
    assert [line for line, _ in error.problems] == [2, 4, 6]
    assert isinstance(error, LrtError) and error.exit_code == 1


def test_a_long_list_of_problems_is_capped(tmp_path):
    path = write(tmp_path, [sara(100)] + [f"junk{i}" for i in range(30)])
    message = str(error_of(path))
    assert "line 21: not an srm" in message and "line 22:" not in message
    assert message.endswith("  ... and 10 more")
    assert len(message.splitlines()) == 1 + 20 + 1


# --- conversions ----------------------------------------------------------------------------

SITE_TABLE = {  # written out by hand from the LOFAR archive sites' published endpoints, independently of links.py
    "sara": ("srm://srm.grid.sara.nl:8443", "gsiftp://gridftp.grid.sara.nl:2811",
             "https://lofar-download.grid.sara.nl/lofigrid/SRMFifoGet.py?surl=",
             "/pnfs/grid.sara.nl/data/lofar/ops/projects/lc2_038/229507/L229507_SB100_uv.dppp.MS_3d78b8f1.tar"),
    "juelich": ("srm://lofar-srm.fz-juelich.de:8443", "gsiftp://lofar-gridftp.fz-juelich.de:2811",
                "https://lofar-download.fz-juelich.de/webserver-lofar/SRMFifoGet.py?surl=",
                "/pnfs/fz-juelich.de/data/lofar/ops/projects/lc5_020/L229507/L229507_SB101_uv.MS_a1.tar"),
    "poznan": ("srm://lta-head.lofar.psnc.pl:8443", "gsiftp://gridftp.lofar.psnc.pl:2811",
               "https://lta-download.lofar.psnc.pl/lofigrid/SRMFifoGet.py?surl=",
               "/lofar/ops/projects/lt10_010/L229507/L229507_SB102_uv.MS_b2.tar"),
}


def forms_of(site: str) -> dict[str, str]:
    srm, gsiftp, http, path = SITE_TABLE[site]
    return {"srm": srm + path, "gsiftp": gsiftp + path, "http": http + srm + path,
            "gfal": srm + "/srm/managerv2?SFN=" + path}


@pytest.mark.parametrize("site", sorted(SITE_TABLE))
@pytest.mark.parametrize("source, target", list(itertools.product(["srm", "gsiftp", "http", "gfal"], repeat=2)))
def test_every_conversion_round_trips(site, source, target):
    forms = forms_of(site)
    link = parse_link(forms[source])
    assert (link.form, link.site, link.obsid) == (source, site, "L229507")
    converted = link.to(target)
    assert converted == forms[target]
    assert parse_link(converted).to(source) == forms[source]
    assert getattr(link, target) == forms[target]  # the property of the same name


@pytest.mark.parametrize("site", sorted(SITE_TABLE))
def test_classic_replace_methods(site):
    forms = forms_of(site)
    links = srmlist()
    for source in forms.values():
        assert links.srm_replace(source) == forms["srm"]
        assert links.gsi_replace(source) == forms["gsiftp"]
        assert links.http_replace(source) == forms["http"]
        assert links.gfal_replace(source) == forms["gfal"]
    assert links.srm_replace(links.gsi_replace(forms["srm"])) == forms["srm"]
    assert links.srm_replace(links.http_replace(forms["srm"])) == forms["srm"]
    assert links.srm_replace(links.gfal_replace(forms["srm"])) == forms["srm"]


@pytest.mark.parametrize("site", sorted(SITE_TABLE))
def test_each_form_is_a_valid_list_line(site, tmp_path):
    forms = forms_of(site)
    for form, url in forms.items():
        parsed = read_srm_file(write(tmp_path, [url], f"{form}.txt"))
        assert [link.url for link in parsed.links] == [url]
        assert parsed.site == site and parsed.links[0].subband in (100, 101, 102)


def test_a_link_on_an_unknown_site_cannot_be_converted():
    link = parse_link(sara(100, host="srm://srm.example.org:8443"))
    assert link.site is None
    with pytest.raises(SrmListError, match="unknown site"):
        link.gsiftp


def test_link_generators_keep_list_order():
    subbands = [105, 101, 110, 100, 103]
    links = srmlist()
    for n in subbands:
        links.append(sara(n))
    gsi = SITE_TABLE["sara"][1]
    assert list(links.gsi_links()) == [sara(n, host=gsi) for n in subbands]
    assert list(links.http_links()) == [SITE_TABLE["sara"][2] + sara(n) for n in subbands]
    assert list(links.gfal_links()) == [sara(n).replace(":8443", ":8443/srm/managerv2?SFN=") for n in subbands]


# --- the classic srmlist ------------------------------------------------------------------


def test_classic_constructor_and_alias():
    assert SrmList is srmlist
    links = srmlist(link=sara(100))
    assert list(links) == [sara(100)] and links.obsid == "L229507" and links.lta_location == "sara"
    assert links.LTA_location == "sara"
    empty = srmlist()
    assert len(empty) == 0 and empty.obsid is None and empty.lta_location is None


def test_classic_append_checks_against_the_first_link():
    links = srmlist(link=sara(100))
    with pytest.raises(SrmListError, match="OBSID L1 differs"):
        links.append(sara(101, obsid="L1"))
    with pytest.raises(SrmListError, match="site juelich differs"):
        links.append(sara(101, host="srm://lofar-srm.fz-juelich.de:8443"))
    with pytest.raises(SrmListError, match="unknown site"):
        links.append(sara(101, host="srm://srm.example.org:8443"))
    with pytest.raises(SrmListError, match="not an srm"):
        links.append("hello")
    assert list(links) == [sara(100)]
    # A refused link leaves no trace: appending it with checks off later works.
    loose = srmlist(check_OBSID=False, check_location=False, link=sara(100))
    loose.append(sara(101, obsid="L1"))
    loose.append(sara(102, host="srm://srm.example.org:8443"))
    assert len(loose) == 3 and loose.obsid == "L229507"


def test_classic_append_normalises_and_drops_duplicates():
    links = srmlist()
    links.append(f"  {sara(100)}\r\n")
    links.append(sara(100))
    links.append(sara(100).replace(":8443/pnfs", ":8443//pnfs"))
    links.append("")
    links.append("\n")
    assert list(links) == [sara(100)]
    assert links.duplicates_dropped == 2


def test_classic_list_stays_consistent_after_plain_list_methods():
    links = srmlist()
    links.extend([sara(100), sara(101)])
    links += [sara(102)]
    assert links.pop() == sara(102)
    links.append(sara(102))  # not mistaken for a duplicate of the popped link
    assert list(links) == [sara(100), sara(101), sara(102)]
    links.clear()
    links.append(sara(100, obsid="L5"))  # the first link now sets the OBSID again
    assert links.obsid == "L5"


def test_classic_from_file_adds_all_or_nothing(tmp_path):
    links = srmlist(link=sara(100))
    bad = write(tmp_path, [sara(101), sara(102, obsid="L1"), sara(103, obsid="L1")])
    with pytest.raises(SrmListError) as caught:
        links.from_file(str(bad))
    assert str(caught.value).startswith(f"{bad}: 2 problems:")
    assert "line 2: OBSID L1 differs from the list's L229507\n" in str(caught.value) + "\n"
    assert list(links) == [sara(100)]
    links.from_file(write(tmp_path, [sara(100), sara(101)], "good.txt"))
    assert list(links) == [sara(100), sara(101)] and links.duplicates_dropped == 1


def test_classic_sbn_dict_reports_problems_together():
    links = srmlist()
    links.extend([sara(100), sara("X"), sara("0100", tail="_b.tar"), sara(101)])
    with pytest.raises(SrmListError) as caught:
        list(links.sbn_dict())
    assert "link 2: no subband number" in str(caught.value)
    assert "link 3: subband 100 twice, with different URLs (link 1)" in str(caught.value)


def test_classic_sbn_dict_pairs():
    links = srmlist()
    links.extend([sara(n) for n in (102, 100, 101)])
    pairs = list(links.sbn_dict())
    assert [name for name, _ in pairs] == ["100", "101", "102"]
    assert [list(value) for _, value in pairs] == [[sara(100)], [sara(101)], [sara(102)]]
    assert list(links.sbn_dict(suff="_")) == list(links.sbn_dict(pref="SB", suff="_"))


def test_parse_lines_without_a_pattern_skips_subband_rules():
    parsed = parse_lines([sara("X"), sara("Y")], pattern=None)
    assert len(parsed.links) == 2 and all(link.subband is None for link in parsed.links)


def test_parse_link_strips_whitespace_and_line_ends():
    assert parse_link(f"  {sara(100)} \r\n").url == sara(100)
