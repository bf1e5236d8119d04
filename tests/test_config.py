"""The workflow configuration: lrt_workflow.config, its schema and the shipped config.yaml."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest

from lrt_workflow.config import SCHEMA_PATH, check_files, load_config, load_schema, validate_config
from lrt_workflow.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
# The examples the project ships, never the user's own config.yaml, which they edit.
SHIPPED = REPO / "example" / "one-step" / "config.yaml"

MINIMAL = {"srm_file": "obs/srm.txt", "token": {"type": "pref_cal", "template": "token.json"}}

DEFAULTS_FILLED = {
    "srm_file": "obs/srm.txt",
    "subband_pattern": {"prefix": "SB", "suffix": "[_.]"},
    "chunk_size": 10,
    "results_dir": "results",
    "token": {"type": "pref_cal", "template": "token.json", "fields": {}, "command": None, "attachments": []},
    "couchdb": {"url": "embedded", "database": "lrt", "verify_tls": True, "embedded_data_dir": ".lrt/couchdb",
                "batch_size": 500},
    "pilots": {"launcher": "local", "count": 2, "lease_seconds": 3600, "max_token_seconds": None,
               "resources": {"runtime": 1440, "mem_mb": 4000, "cpus_per_task": 1}},
    "wait": {"poll_seconds": 10, "timeout_seconds": 86400, "max_scrub": 2, "max_error_fraction": 0,
             "success_fraction": None},
    "archive": {"purge": False},
}


def minimal(**changes) -> dict:
    """MINIMAL with some top-level keys replaced, or sections merged in."""
    config = copy.deepcopy(MINIMAL)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    return config


def problems_of(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


# --- the shipped file and the defaults ---------------------------------------------------


def test_shipped_config_validates():
    config = load_config(SHIPPED)
    assert config["srm_file"] == "example/one-step/srm.txt"
    assert config["token"]["template"] == "example/one-step/token.json"
    assert config["token"]["attachments"] == ["example/one-step/job.sh"]
    assert config["couchdb"]["url"] == "embedded"
    assert "password" not in config["couchdb"]


def test_shipped_config_shows_the_defaults():
    # Its comments say "(default ...)": the values written must be those defaults.
    shipped = load_config(SHIPPED)
    expected = validate_config({"srm_file": shipped["srm_file"], "token": {
        "type": shipped["token"]["type"], "template": shipped["token"]["template"],
        "attachments": shipped["token"]["attachments"]}})
    assert shipped == expected


def test_defaults_applied():
    assert validate_config(MINIMAL) == DEFAULTS_FILLED


def test_defaults_fill_a_partial_section_and_keep_given_values():
    config = validate_config(minimal(couchdb={"url": "https://host:6984", "user": "me"}, chunk_size=3))
    assert config["couchdb"] == {
        "url": "https://host:6984", "user": "me", "database": "lrt", "verify_tls": True,
        "embedded_data_dir": ".lrt/couchdb",
        "batch_size": 500,
    }
    assert config["chunk_size"] == 3


def test_defaults_are_not_shared_between_results():
    first = validate_config(MINIMAL)
    first["token"]["attachments"].append("x")
    first["subband_pattern"]["prefix"] = "ABN_"
    second = validate_config(MINIMAL)
    assert second["token"]["attachments"] == []
    assert second["subband_pattern"]["prefix"] == "SB"
    assert load_schema()["properties"]["token"]["properties"]["attachments"]["default"] == []


def test_input_not_mutated():
    config = minimal(couchdb={"url": "embedded"}, token={"fields": {"campaign": "x"}})
    before = copy.deepcopy(config)
    result = validate_config(config)
    assert config == before
    result["couchdb"]["database"] = "other"
    result["token"]["fields"]["campaign"] = "y"
    assert config == before


def test_input_not_mutated_on_error():
    config = minimal(chunk_size="ten", pilots={})
    before = copy.deepcopy(config)
    with pytest.raises(ConfigError):
        validate_config(config)
    assert config == before


# --- unknown keys, wrong types, all errors at once -------------------------------------------


def test_unknown_top_level_key_named():
    assert problems_of(minimal(colour="red")) == ["config.yaml: unknown key 'colour'"]


def test_unknown_nested_key_named():
    assert problems_of(minimal(token={"colour": "red"})) == ["config.yaml: token: unknown key 'colour'"]
    assert problems_of(minimal(wait={"poll": 3})) == ["config.yaml: wait: unknown key 'poll'"]


def test_source_appears_in_messages():
    with pytest.raises(ConfigError, match=r"^my/run\.yaml: unknown key 'colour'$"):
        validate_config(minimal(colour="red"), source="my/run.yaml")


def test_wrong_type_message():
    assert problems_of(minimal(chunk_size="ten")) == [
        "config.yaml: chunk_size: 'ten' is not allowed: subbands per token, or \"all\" for one token with every input"]


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 10.0}, "chunk_size"),  # integers are strict: no 10.0
        ({"chunk_size": True}, "chunk_size"),
        ({"srm_file": 3}, "srm_file"),
        ({"srm_file": ""}, "srm_file"),
        ({"results_dir": None}, "results_dir"),
        ({"subband_pattern": {"suffix": "["}}, "subband_pattern.suffix"),
        ({"subband_pattern": {"prefix": 5}}, "subband_pattern.prefix"),
        ({"token": {"command": 3}}, "token.command"),
        ({"token": {"attachments": "job.sh"}}, "token.attachments"),
        ({"token": {"attachments": ["a", 3]}}, "token.attachments[1]"),
        ({"token": {"fields": {"nested": {"a": 1}}}}, "token.fields.nested"),
        ({"token": {"fields": ["a"]}}, "token.fields"),
        ({"token": {"fields": {"lock": 1}}}, "token.fields"),
        ({"token": {"fields": {"_id": "x"}}}, "token.fields"),
        ({"token": {"template": None}}, "token.template"),
        ({"couchdb": {"verify_tls": "yes"}}, "couchdb.verify_tls"),
        ({"couchdb": {"user": 5}}, "couchdb.user"),
        ({"couchdb": None}, "couchdb"),
        ({"pilots": {"launcher": "slurm"}}, "pilots.launcher"),
        ({"pilots": {"count": -1}}, "pilots.count"),
        ({"pilots": {"lease_seconds": 0}}, "pilots.lease_seconds"),
        ({"pilots": {"max_token_seconds": 0}}, "pilots.max_token_seconds"),
        ({"wait": {"poll_seconds": "10"}}, "wait.poll_seconds"),
        ({"wait": {"timeout_seconds": -5}}, "wait.timeout_seconds"),
        ({"wait": {"max_scrub": 1.5}}, "wait.max_scrub"),
        ({"wait": {"max_error_fraction": 1.5}}, "wait.max_error_fraction"),
        ({"wait": {"max_error_fraction": -0.1}}, "wait.max_error_fraction"),
        ({"archive": {"purge": 1}}, "archive.purge"),
    ],
)
def test_wrong_values_refused_with_key_path(changes, key):
    problems = problems_of(minimal(**changes))
    assert len(problems) == 1
    assert problems[0].startswith(f"config.yaml: {key}: ")


@pytest.mark.parametrize(
    "changes",
    [
        {"pilots": {"max_token_seconds": 60}},
        {"pilots": {"lease_seconds": 0.5, "count": 0, "launcher": "none"}},
        {"wait": {"max_error_fraction": 1, "poll_seconds": 0.2}},
        {"subband_pattern": {"prefix": "ABN_", "suffix": "\\."}},
        {"token": {"fields": {"campaign": "LC2_038", "priority": 3, "ok": True, "none": None}}},
        {"token": {"command": "bash job.sh"}},
    ],
)
def test_good_values_accepted(changes):
    config = validate_config(minimal(**changes))
    for section, values in changes.items():
        for key, value in values.items():
            assert config[section][key] == value


def test_missing_required_keys():
    assert problems_of({"token": {}}) == [
        "config.yaml: missing required key 'srm_file' (or give observations and steps, for a pipeline)",
        "config.yaml: token: missing required key 'template'",
        "config.yaml: token: missing required key 'type'",
    ]


def test_all_errors_listed_at_once():
    config = minimal(chunk_size="ten", colour="red", token={"colour": 1, "type": "bad type!"},
                     couchdb={"url": "ftp://x"}, wait={"max_scrub": -1})
    problems = problems_of(config)
    assert len(problems) == 6
    assert "config.yaml: chunk_size: 'ten' is not allowed: subbands per token, or \"all\" for one token with every input" in problems
    assert "config.yaml: unknown key 'colour'" in problems
    assert "config.yaml: token: unknown key 'colour'" in problems
    assert any(p.startswith("config.yaml: token.type: 'bad type!'") for p in problems)
    assert any(p.startswith("config.yaml: couchdb.url: 'ftp://x'") for p in problems)
    assert any(p.startswith("config.yaml: wait.max_scrub: -1") for p in problems)


@pytest.mark.parametrize("value", [[1, 2], "text", 3])
def test_top_level_must_be_a_mapping(value):
    with pytest.raises(ConfigError, match="^config.yaml: the top level must be a mapping"):
        validate_config(value)


# --- password ---------------------------------------------------------------------------


PASSWORD = "config.yaml must not hold a password: use PICAS_PASSWORD or ~/.picasrc"


def test_password_refused_with_specific_message():
    problems = problems_of(minimal(couchdb={"user": "me", "password": "secret"}))
    assert problems == [PASSWORD + " (found couchdb.password)"]
    assert "secret" not in problems[0]


@pytest.mark.parametrize(
    "changes, where",
    [
        ({"password": "x"}, "password"),
        ({"couchdb": {"Password": "x"}}, "couchdb.Password"),
        ({"token": {"fields": {"PICAS_PASSWORD": "x"}}}, "token.fields.PICAS_PASSWORD"),
        ({"couchdb": {"passwd": "x"}}, "couchdb.passwd"),
    ],
)
def test_password_refused_anywhere(changes, where):
    assert problems_of(minimal(**changes)) == [f"{PASSWORD} (found {where})"]


def test_password_message_names_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("srm_file: s\ntoken: {type: t, template: t.json}\ncouchdb:\n  password: x\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path} must not hold a password: use PICAS_PASSWORD")):
        load_config(path)


# --- url, database name, token type -----------------------------------------------------


@pytest.mark.parametrize("url", ["embedded", "https://host:6984", "http://localhost:5984/", "https://a.b.c/picas"])
def test_good_urls(url):
    assert validate_config(minimal(couchdb={"url": url}))["couchdb"]["url"] == url


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "", "Embedded", "https://", "https://host name", "host:6984"])
def test_bad_urls(url):
    problems = problems_of(minimal(couchdb={"url": url}))
    assert len(problems) == 1 and problems[0].startswith("config.yaml: couchdb.url: ")


@pytest.mark.parametrize("name", ["lofar_db", "lrt", "a", "db$(x)+y/z-1", "a" * 238])
def test_good_database_names(name):
    assert validate_config(minimal(couchdb={"database": name}))["couchdb"]["database"] == name


@pytest.mark.parametrize("name", ["Lofar", "1db", "has space", "_users", "", "a" * 239, "db.name"])
def test_bad_database_names(name):
    problems = problems_of(minimal(couchdb={"database": name}))
    assert len(problems) == 1 and problems[0].startswith("config.yaml: couchdb.database: ")


@pytest.mark.parametrize("token_type", ["pref_cal", "A", "pref-cal-2", "a" * 64])
def test_good_token_types(token_type):
    assert validate_config(minimal(token={"type": token_type}))["token"]["type"] == token_type


@pytest.mark.parametrize("token_type", ["bad type!", "_design", "", "1abc", "a" * 65, "a/b", 5])
def test_bad_token_types(token_type):
    problems = problems_of(minimal(token={"type": token_type}))
    assert len(problems) == 1 and problems[0].startswith("config.yaml: token.type: ")


# --- reading the file ----------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_leading_zero_integer_is_not_octal(tmp_path):
    path = write(tmp_path, "srm_file: s\nchunk_size: 010\ntoken: {type: t, template: t.json}\n")
    with pytest.raises(ConfigError, match=r"chunk_size: '010' is not allowed"):
        load_config(path)


def test_bad_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "srm_file: s\ntoken:\n  type: [t\n  template: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: line ")
    assert "invalid YAML" in str(info.value)


def test_duplicate_key_refused(tmp_path):
    path = write(tmp_path, "srm_file: a\nsrm_file: b\ntoken: {type: t, template: t.json}\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: line 2.*duplicate key 'srm_file'"):
        load_config(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(tmp_path / 'nope.yaml'))}: no such file$"):
        load_config(tmp_path / "nope.yaml")
    empty = write(tmp_path, "# only a comment\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(empty))}: the file is empty$"):
        load_config(empty)


def test_non_mapping_file_refused(tmp_path):
    path = write(tmp_path, "- srm_file: s\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: the top level must be a mapping"):
        load_config(path)


def test_load_config_uses_the_file_name_as_source(tmp_path):
    path = write(tmp_path, "srm_file: s\ntoken: {type: t, template: t.json, colour: red}\n", name="run.yaml")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: token: unknown key 'colour'$"):
        load_config(path)


def test_relative_paths_kept_as_written(tmp_path):
    path = write(tmp_path, "srm_file: ../srm.txt\ntoken: {type: t, template: t.json, attachments: [a/b.sh]}\n")
    config = load_config(path)
    assert config["srm_file"] == "../srm.txt"
    assert config["token"]["template"] == "t.json"
    assert config["token"]["attachments"] == ["a/b.sh"]


# --- check_files ----------------------------------------------------------------------------


def files_config(**token) -> dict:
    return validate_config({"srm_file": "srm.txt", "token": {"type": "t", "template": "token.json", **token}})


def test_check_files_passes_when_all_exist(tmp_path):
    for name in ("srm.txt", "token.json", "job.sh"):
        (tmp_path / name).write_text("x")
    assert check_files(files_config(attachments=["job.sh"]), base_dir=tmp_path) is None


def test_check_files_lists_every_missing_file(tmp_path):
    (tmp_path / "job.sh").write_text("x")
    config = files_config(attachments=["job.sh", "parset", "more/extra.txt"])
    with pytest.raises(ConfigError) as info:
        check_files(config, base_dir=tmp_path)
    assert info.value.problems == [
        "srm_file: srm.txt: no such file",
        "token.template: token.json: no such file",
        "token.attachments[1]: parset: no such file",
        "token.attachments[2]: more/extra.txt: no such file",
    ]
    assert "job.sh" not in str(info.value)


def test_check_files_refuses_a_folder(tmp_path):
    (tmp_path / "srm.txt").mkdir()
    (tmp_path / "token.json").write_text("{}")
    with pytest.raises(ConfigError, match="srm_file: srm.txt: not a regular file"):
        check_files(files_config(), base_dir=tmp_path)


def test_check_files_uses_the_working_directory_by_default(tmp_path, monkeypatch):
    (tmp_path / "srm.txt").write_text("x")
    (tmp_path / "token.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    check_files(files_config())
    monkeypatch.chdir(tmp_path.parent)
    with pytest.raises(ConfigError, match="srm_file: srm.txt: no such file"):
        check_files(files_config())


def test_check_files_absolute_paths_ignore_base_dir(tmp_path):
    srm, template = tmp_path / "s.txt", tmp_path / "t.json"
    srm.write_text("x")
    template.write_text("{}")
    config = validate_config({"srm_file": str(srm), "token": {"type": "t", "template": str(template)}})
    check_files(config, base_dir=tmp_path / "elsewhere")


# --- the schema with jsonschema and with snakemake -------------------------------------------


def test_schema_file_is_package_data():
    assert SCHEMA_PATH.is_file()
    assert SCHEMA_PATH.parent.name == "schema" and SCHEMA_PATH.suffix == ".json"
    assert SCHEMA_PATH.parent.parent == Path(__import__("lrt_workflow").__file__).resolve().parent


def test_schema_is_valid_draft_2020_12():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_object_refuses_unknown_keys():
    def objects(schema, path="(root)"):
        if schema.get("type") == "object" or "properties" in schema:
            yield path, schema
        for name, sub in schema.get("properties", {}).items():
            yield from objects(sub, f"{path}.{name}")

    found = list(objects(load_schema()))
    # root, token, token.fields, observations, steps, subband_pattern, couchdb, pilots, pilots.resources, wait,
    # archive
    assert len(found) == 11
    for path, schema in found:
        # token.fields holds free field names, but its values must be scalars; observations and
        # steps are keyed by the user's names, but their values are strings and closed steps
        if path.endswith(("token.fields", "observations", "steps")):
            assert schema.get("additionalProperties") not in (None, True), path
        else:
            assert schema.get("additionalProperties") is False, path


def test_plain_jsonschema_agrees():
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(load_config(SHIPPED))
    validator.validate(MINIMAL)  # defaults are optional for the schema itself
    with pytest.raises(jsonschema.ValidationError, match="colour"):
        validator.validate(minimal(colour="red"))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(minimal(couchdb={"password": "x"}))


def snakemake_validate(config: dict) -> dict:
    from snakemake.utils import validate

    validate(config, str(SCHEMA_PATH))
    return config


def test_snakemake_accepts_the_shipped_config():
    import yaml

    raw = yaml.safe_load(SHIPPED.read_text())
    assert snakemake_validate(raw) == load_config(SHIPPED)


def test_snakemake_fills_the_same_defaults():
    assert snakemake_validate(copy.deepcopy(MINIMAL)) == validate_config(MINIMAL) == DEFAULTS_FILLED


@pytest.mark.parametrize(
    "config",
    [
        minimal(colour="red"),
        minimal(token={"colour": "red"}),
        minimal(couchdb={"password": "x"}),
        minimal(chunk_size="ten"),
        minimal(couchdb={"database": "Lofar"}),
    ],
)
def test_snakemake_rejects_what_load_config_rejects(config):
    from snakemake.exceptions import WorkflowError

    with pytest.raises(ConfigError):
        validate_config(config)
    with pytest.raises(WorkflowError):
        snakemake_validate(copy.deepcopy(config))
