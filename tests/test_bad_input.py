"""Bad input, one broken thing at a time, through the real workflow and through the ``lrt`` command.

One table, `CASES`, holds every bad input: each case sets up a working one-step project
folder (tests/project.py), breaks exactly one input, runs the real Snakemake workflow, and
checks the promises of the README's "bad input" row as the workflow now keeps them: Snakemake
stops while it reads the Snakefile, exit 1, with ``lrt: error:`` and every problem (with file
and line where there is one), no traceback; no job ran and the embedded server was not even
started; and nothing reached CouchDB. By default the run is the session's server admin
(with LRT_TEST_COUCHDB), who would be free to create the database: it must not even exist.
The cases marked ``picas`` run as the usual PiCaS account instead, whose database exists:
it must stay without a single document.
"""

from __future__ import annotations

import json

import pytest
import requests

import project
from lrt_workflow.srmlist import MAX_FILE_BYTES
from project import OBSID

SRM = "example/srm.txt"
JUELICH = ("srm://lofar-srm.fz-juelich.de:8443/pnfs/fz-juelich.de/data/lofar/ops/projects/lc2_038/229507/"
           "L229507_SB151_uv.dppp.MS_aaaa.tar")
SUBBANDS = 30


def good_lines(n: int = SUBBANDS) -> list[str]:
    return project.SRM_50.read_text().splitlines()[:n]


# --- how each case breaks its one input ---------------------------------------------------------------


def srm_with_line(at: int, line: str):
    """The good list with ``line`` inserted so that it becomes line number ``at``."""
    def breaker(folder, config: dict) -> None:
        lines = good_lines()
        lines.insert(at - 1, line)
        (folder / SRM).write_text("\n".join(lines) + "\n")
    return breaker


def srm_with_obsid(at: int, obsid: str):
    def breaker(folder, config: dict) -> None:
        lines = good_lines()
        lines[at - 1] = lines[at - 1].replace(OBSID, obsid)
        (folder / SRM).write_text("\n".join(lines) + "\n")
    return breaker


def srm_bytes(data: bytes):
    def breaker(folder, config: dict) -> None:
        (folder / SRM).write_bytes(data)
    return breaker


BINARY = ("\n".join(good_lines(5)) + "\n").encode() + b"\x7fELF\x02\x01\x01\x00\x00\x00junk\n"


def srm_of_50_megabytes(folder, config: dict) -> None:
    """50 MB of valid-looking lines (the same subband over and over: the size must be refused first)."""
    line = (good_lines(1)[0] + "\n").encode()
    with open(folder / SRM, "wb") as file:
        file.write(line * (50 * 1024 * 1024 // len(line) + 1))


def template_version(version):
    def breaker(folder, config: dict) -> None:
        data = json.loads((folder / "example" / "token.json").read_text())
        data["PicasApiVersion"] = version
        (folder / "example" / "token.json").write_text(json.dumps(data, indent=4) + "\n")
    return breaker


def config_set(section: str | None, key: str, value):
    def breaker(folder, config: dict) -> None:
        (config.setdefault(section, {}) if section else config)[key] = value
    return breaker


def both(*breakers):
    def breaker(folder, config: dict) -> None:
        for one in breakers:
            one(folder, config)
    return breaker


def expected_size(folder) -> str:
    return f"{(folder / SRM).stat().st_size:,} bytes"


def case(breaker, expected: list, name: str, role: str = "server-admin"):
    """A bad input: its breaker, what the output must hold (a callable gets the folder), and who runs it."""
    return pytest.param(breaker, expected, role, id=name)


CASES = [
    # the srm list
    case(srm_with_line(15, "not a url"), [SRM, "line 15: not a URL", "'not a url'"], "malformed-srm-line"),
    case(srm_with_obsid(21, "L999999"), [SRM, "line 21", "OBSID L999999 differs", "L229507 (line 1)"],
         "mixed-obsids"),
    case(srm_with_line(31, good_lines(41)[40].replace(OBSID, "L999999")), [SRM, "line 31", "OBSID L999999 differs"],
         "mixed-obsids-on-the-last-line-picas", role="picas"),
    case(srm_with_line(31, JUELICH), [SRM, "line 31", "site juelich differs", "sara (line 1)"], "mixed-sites"),
    case(srm_bytes(b""), [SRM, "the list is empty"], "empty-srm-file"),
    case(srm_bytes(BINARY), [SRM, "not a text file", "NUL byte on line 6"], "binary-srm-file"),
    case(srm_bytes(b"\x7fELF\x00\x01\x02" * 50), [SRM, "not a text file", "NUL byte on line 1"],
         "binary-srm-file-from-its-first-byte"),
    case(srm_of_50_megabytes, [SRM, "too large for an srm list", f"the limit is {MAX_FILE_BYTES:,} bytes",
                               expected_size], "srm-file-of-50-MB"),
    # the configuration
    case(config_set(None, "chunk_size", "ten"), ["config.yaml: chunk_size: 'ten' is not allowed"],
         "config-wrong-type"),
    case(config_set("pilots", "colour", "blue"), ["config.yaml: pilots: unknown key 'colour'"], "config-unknown-key"),
    case(config_set("token", "colour", "blue"), ["config.yaml: token: unknown key 'colour'"],
         "config-unknown-key-in-token-picas", role="picas"),
    case(config_set("pilots", "cuont", 3), ["config.yaml: pilots: unknown key 'cuont' (did you mean 'count'?)"],
         "config-typo"),
    case(both(config_set(None, "chunk_size", "ten"), config_set("token", "colour", "blue")),
         ["config.yaml: chunk_size: 'ten' is not allowed", "config.yaml: token: unknown key 'colour'"],
         "config-two-problems-at-once"),
    case(config_set("token", "type", "bad type!"), ["config.yaml: token.type: 'bad type!' is not allowed"],
         "token-type-couchdb-rejects"),
    case(config_set("couchdb", "database", "Bad_DB"), ["config.yaml: couchdb.database: 'Bad_DB' is not allowed"],
         "database-name-couchdb-rejects"),
    case(config_set("couchdb", "url", "not a url"), ["config.yaml: couchdb.url: 'not a url' is not allowed"],
         "couchdb-url-not-a-url"),
    # the files it names
    case(config_set("token", "template", "example/nope.json"), ["token.template: example/nope.json: no such file"],
         "missing-token-template"),
    case(template_version(0.4), ["PicasApiVersion 0.4 in example/token.json", "older than 0.5"], "template-api-0.4"),
    case(config_set("token", "attachments", ["example/job.sh", "example/gone.parset"]),
         ["token.attachments[1]: example/gone.parset: no such file"], "missing-attachment"),
]


@pytest.mark.slow
@pytest.mark.parametrize("breaker, expected, role", CASES)
def test_one_bad_input_stops_snakemake_before_any_job_and_writes_nothing_to_couchdb(
        tmp_path, workflow_couchdb_for, runs, breaker, expected, role):
    target = workflow_couchdb_for(role, create=role != "server-admin")
    config = project.one_step(tmp_path, target)
    breaker(tmp_path, config)
    project.save_config(tmp_path, config)
    before = target.existing_databases()

    result = runs.snakemake(tmp_path, target=target, check=False)

    text = result.stdout
    assert result.returncode == 1, text[-3000:]
    assert "lrt: error: " in text, text[-3000:]
    for substring in expected:
        substring = substring(tmp_path) if callable(substring) else substring
        assert substring in text, f"{substring!r} not in the output:\n{text[-3000:]}"
    assert "Traceback" not in text, text[-3000:]
    # Stopped while reading the Snakefile: no job ran, and no embedded server was started.
    assert not (tmp_path / "results").exists(), sorted(str(p) for p in (tmp_path / "results").rglob("*"))
    assert not (tmp_path / ".lrt").exists(), "the embedded server was started"
    if role == "server-admin":  # the database was never even created
        tokens = target.tokens(tmp_path)
        assert tokens is None, f"the database exists, with {len(tokens)} tokens"
        databases = target.databases(tmp_path, before)
        assert databases == [], f"databases were created: {databases}"
    else:  # the PiCaS account's database exists, and holds no document, not even a design document
        assert target.untouched(tmp_path)


@pytest.mark.slow
def test_a_picas_url_from_the_environment_that_is_not_a_url_fails_clearly(tmp_path, workflow_couchdb_for, runs):
    """The environment overrides ``couchdb.url`` (README), so the schema never sees this URL."""
    target = workflow_couchdb_for("server-admin", create=False)
    project.one_step(tmp_path, target)

    result = runs.snakemake(tmp_path, target=target, env={"PICAS_URL": "not a url"}, check=False)

    text = result.stdout
    assert result.returncode == 1, text[-3000:]
    assert "lrt: error: 'not a url' is not a CouchDB URL" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert not list(tmp_path.glob("results/*/design.json")) and not list(tmp_path.glob("results/*/tokens.json"))
    assert target.tokens(tmp_path) is None


# --- the same refusals from the lrt command, without Snakemake -----------------------------------------


def assert_refused(result, *expected: str) -> None:
    """Exit 1 with the ``lrt: error:`` line(s) and nothing before them, no traceback."""
    text = result.stdout
    assert result.returncode == 1, (result.returncode, text[-3000:])
    assert text.startswith("lrt: error:"), text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    for substring in expected:
        assert substring in text, f"{substring!r} not in {text[-3000:]!r}"


@pytest.mark.parametrize("breaker, expected", [
    pytest.param(srm_with_line(15, "not a url"), [SRM, "line 15: not a URL"], id="malformed-srm-line"),
    pytest.param(srm_bytes(BINARY), [SRM, "NUL byte on line 6"], id="binary-srm-file"),
    pytest.param(srm_of_50_megabytes, [SRM, "too large for an srm list", expected_size], id="srm-file-of-50-MB"),
    pytest.param(template_version("0.4"), ["PicasApiVersion 0.4", "example/token.json"], id="template-api-0.4"),
    pytest.param(config_set("token", "template", "example/nope.json"), ["example/nope.json", "no such file"],
                 id="missing-token-template"),
])
def test_step_srmlist_refuses_bad_input_and_writes_no_output(tmp_path, runs, breaker, expected):
    config = project.one_step(tmp_path)
    breaker(tmp_path, config)
    project.save_config(tmp_path, config)

    result = runs.lrt(tmp_path, "step", "srmlist", "--config", "config.yaml", "--source", SRM,
                      "--inputs-out", "out/inputs.json", "--srm-out", "out/srm.txt",
                      "--summary-out", "out/summary.json", "--log", "out/srmlist.log")

    expected = [e(tmp_path) if callable(e) else e for e in expected]
    assert_refused(result, *expected)
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name != "srmlist.log"]
    log = (tmp_path / "out" / "srmlist.log").read_text()
    assert log.startswith("lrt: error:") and all(e in log for e in expected), log


def test_step_srmlist_names_the_config_file_of_a_wrong_type(tmp_path, runs):
    config = project.one_step(tmp_path)
    config["chunk_size"] = "ten"
    config["token"]["colour"] = "blue"
    project.save_config(tmp_path, config)

    result = runs.lrt(tmp_path, "step", "srmlist", "--config", "config.yaml", "--source", SRM,
                      "--inputs-out", "out/inputs.json", "--srm-out", "out/srm.txt", "--summary-out", "out/summary.json")

    # every problem, each with the file it is in
    assert_refused(result, "config.yaml: chunk_size: 'ten' is not allowed",
                   "config.yaml: token: unknown key 'colour'")
    assert not (tmp_path / "out").exists()


def documents(couchdb_server, database) -> list:
    return requests.get(f"{couchdb_server.url}{database.database_name}/_all_docs", auth=couchdb_server.auth,
                        timeout=30).json()["rows"]


@pytest.mark.parametrize("breaker, expected", [
    pytest.param(srm_with_line(15, "not a url"), [SRM, "line 15: not a URL"], id="malformed-srm-line"),
    pytest.param(srm_bytes(b""), [SRM, "the list is empty"], id="empty-srm-file"),
    pytest.param(srm_with_line(31, JUELICH), [SRM, "line 31: site juelich differs"], id="mixed-sites"),
    pytest.param(template_version(0.4), ["PicasApiVersion 0.4", "example/token.json"], id="template-api-0.4"),
])
def test_tokens_create_refuses_bad_input_before_touching_couchdb(tmp_path, couchdb_server, database, runs,
                                                                  breaker, expected):
    config = project.one_step(tmp_path)
    breaker(tmp_path, config)

    result = runs.lrt(tmp_path, "tokens", "create", SRM, "--template", "example/token.json", "--type", "demo",
                      "--url", couchdb_server.url, "--database", database.database_name,
                      env=couchdb_server.environment())

    assert_refused(result, *expected)
    assert documents(couchdb_server, database) == [], "tokens create wrote to the database"


def test_tokens_create_refuses_a_token_type_couchdb_would_reject(tmp_path, couchdb_server, database, runs):
    project.one_step(tmp_path)

    result = runs.lrt(tmp_path, "tokens", "create", SRM, "--template", "example/token.json", "--type", "bad type!",
                      "--url", couchdb_server.url, "--database", database.database_name,
                      env=couchdb_server.environment())

    assert_refused(result, "token type 'bad type!' is not valid")
    assert documents(couchdb_server, database) == [], "not even a design document may be written"


@pytest.mark.parametrize("url", ["not a url", "127.0.0.1:5984", "http://"])
def test_tokens_create_refuses_a_url_option_that_is_not_a_url(tmp_path, runs, url):
    project.one_step(tmp_path)

    result = runs.lrt(tmp_path, "tokens", "create", SRM, "--template", "example/token.json", "--type", "demo",
                      "--url", url, "--database", "lrt")

    assert_refused(result, url.rstrip("/"))


@pytest.mark.parametrize("argv", [
    pytest.param(["srm", "check", SRM], id="srm-check"),
    # a server that is not there: the list is refused before any attempt to reach it
    pytest.param(["tokens", "create", SRM, "--template", "example/token.json", "--type", "pref",
                  "--url", "http://127.0.0.1:9/", "--database", "x"], id="tokens-create-before-connecting"),
])
def test_commands_refuse_a_bad_srm_line_without_a_traceback(tmp_path, runs, argv):
    project.one_step(tmp_path)
    (tmp_path / SRM).write_text(good_lines(1)[0] + "\nnot a url\n")

    result = runs.lrt(tmp_path, *argv)

    assert_refused(result, f"{SRM}: line 2: not a URL")
    assert "cannot reach" not in result.stdout
