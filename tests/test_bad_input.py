"""Bad input, one broken thing at a time, through the real workflow and through the ``lrt`` command.

Every case sets up a working project folder, breaks exactly one input, runs the
real Snakemake workflow against its own embedded server (or, with LRT_TEST_COUCHDB,
the session's server as its admin, who would be free to create the database), and
checks the three promises of the README's "bad input" row: the run fails, the
message names the problem (with file and line where there is one), and nothing
reached CouchDB - the database the run would use does not even exist.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from lrt_workflow.srmlist import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parent.parent
SRM_50 = ROOT / "tests" / "data" / "srm" / "srm_50_sara.txt"
OBSID = "L229507"
SRM = "example/srm.txt"
JUELICH = ("srm://lofar-srm.fz-juelich.de:8443/pnfs/fz-juelich.de/data/lofar/ops/projects/lc2_038/229507/"
           "L229507_SB151_uv.dppp.MS_aaaa.tar")
SUBBANDS = 30


# --- helpers (small copies of those in test_workflow.py: tests/ is not a package) ----------------------


def good_lines(n: int = SUBBANDS) -> list[str]:
    return SRM_50.read_text().splitlines()[:n]


@pytest.fixture
def target(workflow_couchdb_for):
    """Where the runs would keep their tokens: as the server admin, the database not made yet."""
    return workflow_couchdb_for("server-admin", create=False)


def write_project(folder: Path, target=None, subbands: int = SUBBANDS) -> dict:
    """A working project folder; returns its config (written by `save_config`) for a case to break."""
    example = folder / "example"
    example.mkdir(parents=True, exist_ok=True)
    (example / "srm.txt").write_text("\n".join(good_lines(subbands)) + "\n")
    shutil.copy(ROOT / "example" / "token.json", example / "token.json")
    shutil.copy(ROOT / "example" / "job.sh", example / "job.sh")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["wait"]["poll_seconds"] = 1
    config["pilots"]["count"] = 2
    if target is not None:  # else couchdb.url: embedded, the shipped default
        config["couchdb"].update(target.config)
    return config


def save_config(folder: Path, config: dict) -> None:
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


def clean_environment(home: Path, **extra: str) -> dict:
    """Our environment without any PiCaS setting that could override config.yaml, and a private HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICAS")}
    return {**env, "HOME": str(home), **extra}


def snakemake(folder: Path, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
               "--profile", str(ROOT / "profiles" / "local")]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout,
                          env=env)


# --- how each case breaks its one input ---------------------------------------------------------------


def srm_with_line(at: int, line: str):
    """The good list with ``line`` inserted so that it becomes line number ``at``."""
    def breaker(folder: Path, config: dict) -> None:
        lines = good_lines()
        lines.insert(at - 1, line)
        (folder / SRM).write_text("\n".join(lines) + "\n")
    return breaker


def srm_with_obsid(at: int, obsid: str):
    def breaker(folder: Path, config: dict) -> None:
        lines = good_lines()
        lines[at - 1] = lines[at - 1].replace(OBSID, obsid)
        (folder / SRM).write_text("\n".join(lines) + "\n")
    return breaker


def srm_bytes(data: bytes):
    def breaker(folder: Path, config: dict) -> None:
        (folder / SRM).write_bytes(data)
    return breaker


BINARY = ("\n".join(good_lines(5)) + "\n").encode() + b"\x7fELF\x02\x01\x01\x00\x00\x00junk\n"


def srm_of_50_megabytes(folder: Path, config: dict) -> None:
    """50 MB of valid-looking lines (the same subband over and over: the size must be refused first)."""
    line = (good_lines(1)[0] + "\n").encode()
    with open(folder / SRM, "wb") as file:
        file.write(line * (50 * 1024 * 1024 // len(line) + 1))


def template_version(version):
    def breaker(folder: Path, config: dict) -> None:
        data = json.loads((folder / "example" / "token.json").read_text())
        data["PicasApiVersion"] = version
        (folder / "example" / "token.json").write_text(json.dumps(data, indent=4) + "\n")
    return breaker


def config_set(section: str | None, key: str, value):
    def breaker(folder: Path, config: dict) -> None:
        (config[section] if section else config)[key] = value
    return breaker


def expected_size(folder: Path) -> str:
    return f"{(folder / SRM).stat().st_size:,} bytes"


# (breaker, substrings the output must hold; a callable gets the folder, for what depends on the case)
CASES = [
    pytest.param(srm_with_line(15, "not a url"), [SRM, "line 15", "not a URL", "'not a url'"],
                 id="malformed-srm-line"),
    pytest.param(srm_with_obsid(21, "L999999"), [SRM, "line 21", "OBSID L999999 differs", "L229507 (line 1)"],
                 id="mixed-obsids"),
    pytest.param(srm_with_line(31, JUELICH), [SRM, "line 31", "site juelich differs", "sara (line 1)"],
                 id="mixed-sites"),
    pytest.param(srm_bytes(b""), [SRM, "the list is empty"], id="empty-srm-file"),
    pytest.param(srm_bytes(BINARY), [SRM, "not a text file", "NUL byte on line 6"], id="binary-srm-file"),
    pytest.param(srm_of_50_megabytes, [SRM, "too large for an srm list", f"the limit is {MAX_FILE_BYTES:,} bytes",
                                       expected_size], id="srm-file-of-50-MB"),
    pytest.param(config_set(None, "chunk_size", "ten"), ["chunk_size", "'ten' is not of type 'integer'"],
                 id="config-wrong-type"),
    pytest.param(config_set("pilots", "colour", "blue"), ["pilots", "unknown key 'colour'"],
                 id="config-unknown-key"),
    pytest.param(config_set("token", "template", "example/nope.json"), ["Missing input files", "example/nope.json"],
                 id="missing-token-template"),
    pytest.param(template_version(0.4), ["PicasApiVersion 0.4", "example/token.json", "older than 0.5"],
                 id="template-api-0.4"),
    pytest.param(config_set("token", "attachments", ["example/job.sh", "example/gone.parset"]),
                 ["Missing input files", "example/gone.parset"], id="missing-attachment"),
    pytest.param(config_set("token", "type", "bad type!"), ["token.type", "'bad type!' is not allowed"],
                 id="token-type-couchdb-rejects"),
    pytest.param(config_set("couchdb", "database", "Bad_DB"), ["couchdb.database", "'Bad_DB' is not allowed"],
                 id="database-name-couchdb-rejects"),
    pytest.param(config_set("couchdb", "url", "not a url"), ["couchdb.url", "'not a url' is not allowed"],
                 id="couchdb-url-not-a-url"),
]


@pytest.mark.slow
@pytest.mark.parametrize("breaker, expected", CASES)
def test_one_bad_input_fails_the_workflow_clearly_and_writes_nothing_to_couchdb(tmp_path, target, breaker, expected):
    config = write_project(tmp_path, target)
    breaker(tmp_path, config)
    save_config(tmp_path, config)
    before = target.existing_databases()

    result = snakemake(tmp_path, clean_environment(tmp_path, **target.environment))

    text = result.stdout + result.stderr
    assert result.returncode != 0, text[-3000:]
    for substring in expected:
        substring = substring(tmp_path) if callable(substring) else substring
        assert substring in text, f"{substring!r} not in the output:\n{text[-3000:]}"
    assert "Traceback" not in text, text[-3000:]
    # No step that talks to CouchDB finished, and the database was never even created.
    assert not list(tmp_path.glob("results/*/design.json")) and not list(tmp_path.glob("results/*/tokens.json"))
    tokens = target.tokens(tmp_path)
    assert tokens is None, f"the database exists, with {len(tokens)} tokens"
    databases = target.databases(tmp_path, before)
    assert databases == [], f"databases were created: {databases}"


@pytest.mark.slow
def test_a_picas_url_from_the_environment_that_is_not_a_url_fails_clearly(tmp_path, target):
    """The environment overrides ``couchdb.url`` (README), so the schema never sees this URL."""
    config = write_project(tmp_path, target)
    save_config(tmp_path, config)

    result = snakemake(tmp_path, env=clean_environment(tmp_path, **target.environment, PICAS_URL="not a url"))

    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert target.tokens(tmp_path) is None
    assert "lrt: error:" in text and "'not a url'" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]


# --- the same refusals from the lrt command, without Snakemake -----------------------------------------


def lrt(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrt_workflow", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=clean_environment(cwd, **(env or {})))


def assert_one_line_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    assert result.stderr.startswith("lrt: error:"), result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for substring in expected:
        assert substring in result.stderr, f"{substring!r} not in {result.stderr[-3000:]!r}"


@pytest.mark.parametrize("breaker, expected", [
    pytest.param(srm_with_line(15, "not a url"), [SRM, "line 15: not a URL"], id="malformed-srm-line"),
    pytest.param(srm_bytes(BINARY), [SRM, "NUL byte on line 6"], id="binary-srm-file"),
    pytest.param(srm_of_50_megabytes, [SRM, "too large for an srm list", expected_size], id="srm-file-of-50-MB"),
    pytest.param(template_version("0.4"), ["PicasApiVersion 0.4", "example/token.json"], id="template-api-0.4"),
    pytest.param(config_set("token", "template", "example/nope.json"), ["example/nope.json", "no such file"],
                 id="missing-token-template"),
])
def test_step_srmlist_refuses_bad_input_in_one_line_and_writes_no_output(tmp_path, breaker, expected):
    config = write_project(tmp_path)
    breaker(tmp_path, config)
    save_config(tmp_path, config)

    result = lrt("step", "srmlist", "--config", "config.yaml", "--srm-out", "out/srm.txt",
                 "--summary-out", "out/summary.json", "--log", "out/srmlist.log", cwd=tmp_path)

    expected = [e(tmp_path) if callable(e) else e for e in expected]
    assert_one_line_error(result, *expected)
    assert not (tmp_path / "out" / "srm.txt").exists() and not (tmp_path / "out" / "summary.json").exists()
    log = (tmp_path / "out" / "srmlist.log").read_text()
    assert log.startswith("lrt: error:") and all(e in log for e in expected), log


def test_step_srmlist_names_the_config_file_of_a_wrong_type(tmp_path):
    config = write_project(tmp_path)
    config["chunk_size"] = "ten"
    config["token"]["colour"] = "blue"
    save_config(tmp_path, config)

    result = lrt("step", "srmlist", "--config", "config.yaml", "--srm-out", "out/srm.txt",
                 "--summary-out", "out/summary.json", cwd=tmp_path)

    # every problem, each with the file it is in
    assert_one_line_error(result, "config.yaml: chunk_size: 'ten' is not of type 'integer'",
                          "config.yaml: token: unknown key 'colour'")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("breaker, expected", [
    pytest.param(srm_with_line(15, "not a url"), [SRM, "line 15: not a URL"], id="malformed-srm-line"),
    pytest.param(srm_bytes(b""), [SRM, "the list is empty"], id="empty-srm-file"),
    pytest.param(srm_with_line(31, JUELICH), [SRM, "line 31: site juelich differs"], id="mixed-sites"),
    pytest.param(template_version(0.4), ["PicasApiVersion 0.4", "example/token.json"], id="template-api-0.4"),
])
def test_tokens_create_refuses_bad_input_before_touching_couchdb(tmp_path, couchdb_server, database,
                                                                  breaker, expected):
    config = write_project(tmp_path)
    breaker(tmp_path, config)

    result = lrt("tokens", "create", SRM, "--template", "example/token.json", "--type", "demo",
                 "--url", couchdb_server.url, "--database", database.database_name, cwd=tmp_path,
                 env=couchdb_server.environment())

    assert_one_line_error(result, *expected)
    docs = requests.get(f"{couchdb_server.url}{database.database_name}/_all_docs", auth=couchdb_server.auth,
                        timeout=30).json()["rows"]
    assert docs == [], "tokens create wrote to the database"


def test_tokens_create_refuses_a_token_type_couchdb_would_reject(tmp_path, couchdb_server, database):
    write_project(tmp_path)

    result = lrt("tokens", "create", SRM, "--template", "example/token.json", "--type", "bad type!",
                 "--url", couchdb_server.url, "--database", database.database_name, cwd=tmp_path,
                 env=couchdb_server.environment())

    assert_one_line_error(result, "token type 'bad type!' is not valid")
    docs = requests.get(f"{couchdb_server.url}{database.database_name}/_all_docs", auth=couchdb_server.auth,
                        timeout=30).json()["rows"]
    assert docs == [], "not even a design document may be written"


@pytest.mark.parametrize("url", ["not a url", "127.0.0.1:5984", "http://"])
def test_tokens_create_refuses_a_url_option_that_is_not_a_url(tmp_path, url):
    write_project(tmp_path)

    result = lrt("tokens", "create", SRM, "--template", "example/token.json", "--type", "demo",
                 "--url", url, "--database", "lrt", cwd=tmp_path)

    assert_one_line_error(result, url.rstrip("/"))
