"""What the steps compute without a server: an observation's summary, its chunks and its token documents."""

from pathlib import Path

from lrt_workflow.srmlist import chunk_plan, read_srm_file, summarise
from lrt_workflow.steps import subband_pattern
from lrt_workflow.steps.tokens import build_tokens

DATA = Path(__file__).parent / "data"
CONFIG = {
    "srm_file": "srm.txt",
    "chunk_size": 10,
    "subband_pattern": {"prefix": "SB", "suffix": "[_.]"},
    "token": {"type": "pref", "fields": {"campaign": "LoTSS"}, "command": None},
}


def parsed(name="srm_50_sara.txt"):
    return read_srm_file(DATA / "srm" / name, pattern=subband_pattern(CONFIG))


def test_summary_of_a_real_list():
    summary = summarise(parsed())
    assert summary["obsid"] == "L229507" and summary["site"] == "sara"
    assert summary["files"] == 51 and summary["subbands"] == {"first": 100, "last": 150}
    assert summary["missing_ranges"] == [] and summary["missing"] == ""


def test_summary_names_the_gaps(tmp_path):
    lines = (DATA / "srm" / "srm_50_sara.txt").read_text().splitlines()
    kept = [line for line in lines if "_SB105_" not in line and "_SB106_" not in line]
    srm = tmp_path / "gappy.txt"
    srm.write_text("\n".join(kept) + "\n")
    summary = summarise(read_srm_file(srm, pattern=subband_pattern(CONFIG)))
    assert summary["missing_ranges"] == [[105, 106]] and summary["missing_count"] == 2 and summary["files"] == 49


def test_chunk_plan_keeps_every_link_once_in_order():
    links = parsed().links
    plan = chunk_plan(links, 10)
    assert [c["name"] for c in plan] == ["100", "110", "120", "130", "140", "150"]
    flat = [url for c in plan for url in c["links"]]
    assert sorted(flat) == sorted(link.url for link in links) and len(flat) == len(set(flat))
    assert all("_SB11" in url for url in plan[1]["links"])


def test_build_token_layers_template_fields_and_chunk():
    template = {"status": "queued", "OBSID": "L000000", "STARTSB": "000", "config.json": {"variables": {}},
                "_id": "ignored", "type": "ignored"}
    [token] = build_tokens(CONFIG, template, "L229507", ["120"])
    assert token["_id"] == "pref_L229507_SB120" and token["type"] == "pref"
    assert (token["OBSID"], token["STARTSB"], token["status"], token["campaign"]) == ("L229507", "120", "queued", "LoTSS")
    for field in ("lock", "done", "scrub_count", "output", "exit_code", "hostname"):
        assert field in token
    assert "command" not in token
    [with_command] = build_tokens({**CONFIG, "token": {**CONFIG["token"], "command": "run.sh"}}, {}, "L1", ["000"])
    assert with_command["command"] == "run.sh"
