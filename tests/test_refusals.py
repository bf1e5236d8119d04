"""Bad input is refused by the real workflow with a clear message, a non-zero exit, and nothing in CouchDB."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SRM_50 = ROOT / "tests" / "data" / "srm" / "srm_50_sara.txt"
JUELICH = ("srm://lofar-srm.fz-juelich.de:8443/pnfs/fz-juelich.de/data/lofar/ops/projects/lc2_038/229507/"
           "L229507_SB151_uv.dppp.MS_aaaa.tar")

pytestmark = pytest.mark.slow


def srm(folder, text: bytes):
    (folder / "example" / "srm.txt").write_bytes(text)


def lines(n=3) -> str:
    return "\n".join(SRM_50.read_text().splitlines()[:n]) + "\n"


def big_file(folder, config):
    line = SRM_50.read_text().splitlines()[0] + "\n"
    with open(folder / "example" / "srm.txt", "w") as out:
        out.write(line * (50 * 1024 * 1024 // len(line) + 1))


def template(folder, config, version):
    data = json.loads((ROOT / "example" / "token.json").read_text())
    data["PicasApiVersion"] = version
    (folder / "example" / "token.json").write_text(json.dumps(data))


CASES = {
    "malformed srm line": (lambda f, c: srm(f, (lines(3) + "not a url\n" + lines(5)[-200:]).encode()),
                           "line 4: not a URL"),
    "mixed OBSIDs": (lambda f, c: srm(f, (lines(3) + lines(4).splitlines()[3].replace("L229507", "L999999") + "\n").encode()),
                     "OBSID L999999 differs"),
    "mixed sites": (lambda f, c: srm(f, (lines(3) + JUELICH + "\n").encode()), "site juelich differs"),
    "empty srm file": (lambda f, c: srm(f, b""), "the list is empty"),
    "binary srm file": (lambda f, c: srm(f, b"\x7fELF\x00\x01\x02" * 50), "not a text file"),
    "50 MB srm file": (big_file, "too large for an srm list"),
    "wrong type in config": (lambda f, c: c.update(chunk_size="ten"), "chunk_size"),
    "unknown key in config": (lambda f, c: c["pilots"].update(colour="blue"), "unknown key 'colour'"),
    "missing token template": (lambda f, c: c["token"].update(template="example/nope.json"), "example/nope.json"),
    "template older than 0.5": (lambda f, c: template(f, c, 0.4), "0.4"),
    "missing attachment file": (lambda f, c: c["token"].update(attachments=["example/gone.parset"]),
                                "example/gone.parset"),
    "token type CouchDB rejects": (lambda f, c: c["token"].update(type="bad type!"), "token.type"),
    "database name CouchDB rejects": (lambda f, c: c["couchdb"].update(database="Bad_DB"), "couchdb.database"),
    "couchdb.url that is not a URL": (lambda f, c: c["couchdb"].update(url="not a url"), "couchdb.url"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_refused_before_anything_reaches_couchdb(tmp_path, case, workflow_couchdb_for):
    # On a server of LRT_TEST_COUCHDB, as its admin, who would be free to create the database.
    target = workflow_couchdb_for("server-admin", create=False)
    breaker, expected = CASES[case]
    (tmp_path / "example").mkdir()
    for name in ("token.json", "job.sh"):
        shutil.copy(ROOT / "example" / name, tmp_path / "example" / name)
    (tmp_path / "example" / "srm.txt").write_text(lines(30))
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["couchdb"].update(target.config)
    breaker(tmp_path, config)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    before = target.existing_databases()

    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--profile", str(ROOT / "profiles" / "local")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, **target.environment},
    )
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in text, text[-3000:]
    assert "Traceback" not in text

    # Nothing was written: the database the run would have used does not exist.
    assert target.databases(tmp_path, before) == []
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("tokens.json"))


@pytest.mark.parametrize("argv, expected", [
    (["srm", "check", "{srm}"], "line 2: not a URL"),
    (["tokens", "create", "{srm}", "--template", "{template}", "--type", "pref", "--url", "http://127.0.0.1:9/",
      "--database", "x"], "line 2: not a URL"),
])
def test_commands_refuse_bad_input_in_one_line_without_a_traceback(tmp_path, argv, expected):
    bad = tmp_path / "srm.txt"
    bad.write_text(lines(1) + "not a url\n")
    args = [a.format(srm=bad, template=ROOT / "example" / "token.json") for a in argv]
    result = subprocess.run([sys.executable, "-m", "lrt_workflow", *args], capture_output=True, text=True,
                            )
    assert result.returncode == 1
    assert result.stderr.startswith("lrt: error:") and expected in result.stderr
    assert "Traceback" not in result.stderr
