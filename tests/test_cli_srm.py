"""``lrt srm check`` and ``lrt srm chunk`` (lrt_workflow.cli.srm)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from lrt_workflow.cli.srm import register
from lrt_workflow.srmlist import SrmListError

DATA = Path(__file__).parent / "data" / "srm"
SRM_50 = DATA / "srm_50_sara.txt"
DYSCO = DATA / "dysco_test.txt"


def sara(subband, obsid: str = "L229507", host: str = "srm://srm.grid.sara.nl:8443") -> str:
    return f"{host}/pnfs/grid.sara.nl/data/lofar/ops/{obsid}/{obsid}_SB{subband}_uv.MS.tar"


def write(tmp_path: Path, lines: list[str], name: str = "srm.txt") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="lrt")
    register(top.add_subparsers(dest="cmd", required=True))
    return top


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


def summary_lines(text: str) -> dict[str, str]:
    return {label.strip(): value.strip() for label, _, value in (line.partition(":") for line in text.splitlines())}


# --- check ------------------------------------------------------------------------------


def test_check_prints_the_summary(capsys):
    assert run(["srm", "check", str(SRM_50)]) == 0
    rows = summary_lines(capsys.readouterr().out)
    assert rows["OBSID"] == "L229507"
    assert rows["site"] == "sara"
    assert rows["files"] == "51"
    assert rows["subbands"] == "100..150"
    assert rows["missing"] == "none"
    assert rows["duplicates dropped"] == "0"


def test_check_shows_missing_subbands_and_duplicates(capsys, tmp_path):
    subbands = [n for n in range(100, 126) if n != 109 and not 120 <= n <= 123]
    path = write(tmp_path, [sara(n) for n in subbands] + [sara(100), sara(101)])
    assert run(["srm", "check", str(path)]) == 0
    out = capsys.readouterr().out
    rows = summary_lines(out)
    assert rows["files"] == "21"
    assert rows["subbands"] == "100..125"
    assert rows["missing"] == "109, 120-123 (5 subbands)"
    assert rows["duplicates dropped"] == "2"
    assert "warning: line 22: duplicate of line 1, dropped" in out


def test_check_json(capsys, tmp_path):
    path = write(tmp_path, [sara(n) for n in (100, 101, 104)])
    assert run(["srm", "check", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["srm_file"] == str(path)
    assert summary["obsid"] == "L229507"
    assert summary["site"] == "sara"
    assert summary["files"] == 3
    assert summary["subbands"] == {"first": 100, "last": 104}
    assert summary["missing"] == "102-103"
    assert summary["missing_ranges"] == [[102, 103]]
    assert summary["missing_count"] == 2
    assert summary["duplicates_dropped"] == 0
    assert summary["warnings"] == []


def test_check_with_a_subband_pattern(capsys):
    assert run(["srm", "check", str(DYSCO), "--pattern-prefix", "ABN_", "--pattern-suffix", r"\.", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["obsid"], summary["files"], summary["subbands"]) == ("L640667", 25, {"first": 104, "last": 344})
    assert summary["missing_count"] == 240 - 24  # 104..344 step 10: 241 slots, 25 present


def test_check_site_can_be_switched_off(capsys, tmp_path):
    path = write(tmp_path, [sara(100, host="srm://srm.example.org:8443"), sara(101)])
    with pytest.raises(SrmListError, match="line 1: unknown site"):
        run(["srm", "check", str(path)])
    assert run(["srm", "check", str(path), "--no-check-site"]) == 0
    assert summary_lines(capsys.readouterr().out)["files"] == "2"


def test_check_reports_every_bad_line(capsys, tmp_path):
    path = write(tmp_path, [sara(100), "oops", sara(102, obsid="L7"), sara("X")])
    with pytest.raises(SrmListError) as caught:
        run(["srm", "check", str(path)])
    message = str(caught.value)
    assert message.startswith(f"{path}: 3 problems:")
    for expected in ("line 2: not an srm", "line 3: OBSID L7", "line 4: no subband"):
        assert expected in message
    assert capsys.readouterr().out == ""


def test_a_bad_suffix_regex_is_a_clean_error(tmp_path):
    with pytest.raises(SrmListError, match="not a valid regular expression"):
        run(["srm", "check", str(SRM_50), "--pattern-suffix", "[_"])


# --- chunk ------------------------------------------------------------------------------


def test_chunk_writes_one_file_per_chunk(capsys, tmp_path):
    out = tmp_path / "chunks"
    assert run(["srm", "chunk", str(SRM_50), "--size", "10", "--out", str(out)]) == 0
    assert "6 chunks" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["100.txt", "110.txt", "120.txt", "130.txt", "140.txt",
                                                     "150.txt"]
    lines = SRM_50.read_text().splitlines()
    assert (out / "100.txt").read_text() == "".join(f"{line}\n" for line in lines[:10])
    assert (out / "140.txt").read_text() == "".join(f"{line}\n" for line in lines[40:50])
    assert (out / "150.txt").read_text() == lines[50] + "\n"


def test_chunk_keeps_holes_and_names_by_first_slot(capsys, tmp_path):
    path = write(tmp_path, [sara(n) for n in range(120, 99, -1) if n != 109])
    out = tmp_path / "out"
    assert run(["srm", "chunk", str(path), "--size", "10", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["100.txt", "110.txt", "120.txt"]
    assert (out / "100.txt").read_text() == "".join(f"{sara(n)}\n" for n in range(100, 109))
    assert (out / "110.txt").read_text().count("\n") == 10
    assert (out / "120.txt").read_text() == f"{sara(120)}\n"


def test_chunk_dysco_with_its_pattern(capsys, tmp_path):
    out = tmp_path / "d"
    assert run(["srm", "chunk", str(DYSCO), "--size", "25", "--out", str(out),
                "--pattern-prefix", "ABN_", "--pattern-suffix", r"\."]) == 0
    names = sorted((p.name for p in out.iterdir()), key=lambda name: int(name.split(".")[0]))
    assert len(names) == 10 and names[:2] == ["104.txt", "129.txt"]
    assert "10 chunks of 25 subband slots" in capsys.readouterr().out


def test_chunk_overwrites_a_previous_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "100.txt").write_text("stale\n")
    run(["srm", "chunk", str(SRM_50), "--size", "100", "--out", str(out)])
    assert (out / "100.txt").read_text() == SRM_50.read_text()
    assert [p.name for p in out.iterdir()] == ["100.txt"]  # no temporary file left behind


@pytest.mark.parametrize("existing", [False, True])
def test_bad_input_writes_nothing(tmp_path, existing):
    path = write(tmp_path, [sara(100), sara(101), sara(102, obsid="L1")])
    out = tmp_path / "out"
    if existing:
        out.mkdir()
    with pytest.raises(SrmListError, match="line 3: OBSID L1 differs"):
        run(["srm", "chunk", str(path), "--size", "1", "--out", str(out)])
    assert (list(out.iterdir()) == []) if existing else not out.exists()


def test_chunk_of_a_binary_file_is_a_clean_error(tmp_path):
    path = tmp_path / "b.txt"
    path.write_bytes(b"\x00\xff")
    with pytest.raises(SrmListError, match="not a text file"):
        run(["srm", "chunk", str(path), "--size", "1", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("size", ["0", "-3", "ten"])
def test_chunk_size_must_be_positive(tmp_path, size, capsys):
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(["srm", "chunk", str(SRM_50), "--size", size, "--out", str(tmp_path)])
    assert caught.value.code == 2
    assert "--size" in capsys.readouterr().err


def test_subcommands_have_help(capsys):
    for argv, expected in ((["srm", "--help"], "check"), (["srm", "check", "--help"], "--json"),
                           (["srm", "chunk", "--help"], "--size")):
        with pytest.raises(SystemExit) as caught:
            parser().parse_args(argv)
        assert caught.value.code == 0
        assert expected in capsys.readouterr().out


def test_srm_needs_a_subcommand(capsys):
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(["srm"])
    assert caught.value.code == 2
