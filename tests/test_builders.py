"""Token configurations (GRID_LRT format) to token fields: lrt_workflow.token.builders."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from lrt_workflow.errors import ConfigError
from lrt_workflow.token.builders import (
    TokenBuilder,
    TokenDictBuilder,
    TokenJsonBuilder,
    TokenYamlBuilder,
    load_token_config,
)

DATA = Path(__file__).parent / "data" / "token-config"
CAL_JSON = DATA / "cal_pref3.json"
CAL_YAML = DATA / "cal_pref3.yaml"


@pytest.fixture
def cal_config() -> dict:
    return json.loads(CAL_JSON.read_text())


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the mapping of every section -------------------------------------------------------


def test_job_variables_become_top_level_fields():
    data = TokenJsonBuilder(CAL_JSON).data
    assert data["OBSID"] == "L229585"
    assert data["PIPELINE_STEP"] == "pref3_cal_CI"
    assert data["STARTSB"] == "000"
    assert data["RESULTS_DIR"].startswith("gsiftp://gridftp.grid.sara.nl:2811/pnfs/")
    assert "variables" not in data


def test_token_fields_are_copied_except_variables():
    data = TokenJsonBuilder(CAL_JSON).data
    assert data["status"] == "queued"
    assert data["times"] == {}
    assert data["upload"]["template"] == "CI_pref3_cal_$STARTSB_$DATE"
    assert data["upload"]["add_date"] is True
    assert data["upload"]["location"] == "$RESULTS_DIR"


def test_token_variables_go_to_config_json():
    variables = TokenJsonBuilder(CAL_JSON).data["config.json"]["variables"]
    assert variables["_attachments"] == {"$PARSET": "Pre-Facet-Calibrator-v3.parset", "$SRMFILE": "srm.txt"}
    assert variables["_token_keys"]["$STARTSB"] == "STARTSB"
    assert set(variables["_token_keys"]) == {"$OBSID", "$PIPELINE_STEP", "$RESULTS_DIR", "$STARTSB"}
    # every _token_keys target is a field the token really has
    data = TokenJsonBuilder(CAL_JSON).data
    assert all(field in data for field in variables["_token_keys"].values())


def test_other_sections_go_to_config_json():
    data = TokenJsonBuilder(CAL_JSON).data
    worker = data["config.json"]
    assert set(worker) == {"variables", "container", "sandbox", "downloader"}
    assert worker["container"]["singularity"]["SIMG"] == "shub://tikk3r/lofar-grid-hpccloud:lofar"
    assert worker["sandbox"]["git"]["branch"] == "prefactor"
    assert worker["sandbox"]["scripts"][0]["prefactor"]["checkout_dir"] == "prefactor"
    assert worker["downloader"]["options"] == ["-rst", "-st", "30", "-fast", "-v"]
    for section in ("container", "sandbox", "downloader"):
        assert section not in data


def test_job_scalars_are_submission_parameters_not_fields():
    builder = TokenJsonBuilder(CAL_JSON)
    data = builder.data
    for name in ("NCPU", "queue", "wholenode", "parameter_step", "command", "Job", "Token", "PicasApiVersion"):
        assert name not in data
    assert builder.job == {
        "NCPU": 6,
        "parameter_step": 1,
        "queue": "mediummc",
        "command": "genericpipeline.py -d -c sing_pipeline.cfg $PARSET ",
        "wholenode": False,
    }
    assert builder.job["command"].startswith("genericpipeline.py")


def test_exact_field_set():
    assert set(TokenJsonBuilder(CAL_JSON).data) == {
        "OBSID", "PIPELINE_STEP", "RESULTS_DIR", "STARTSB", "status", "times", "upload", "config.json",
    }


def test_json_and_yaml_give_equal_data():
    from_json, from_yaml = TokenJsonBuilder(CAL_JSON), TokenYamlBuilder(CAL_YAML)
    assert from_yaml.data == from_json.data
    assert from_yaml.job == from_json.job
    assert from_yaml.data["STARTSB"] == "000"


def test_dict_builder_matches_json_builder(cal_config):
    assert TokenDictBuilder(cal_config).data == TokenJsonBuilder(CAL_JSON).data


def test_worker_maps_always_present():
    data = TokenDictBuilder({"Token": {"status": "queued"}}).data
    assert data["config.json"] == {"variables": {"_token_keys": {}, "_attachments": {}}}
    assert TokenDictBuilder({}).job == {}


def test_top_level_variables_accepted_as_the_older_spelling():
    data = TokenDictBuilder({"variables": {"_token_keys": {"$A": "A"}}, "Job": {"variables": {"A": "1"}}}).data
    assert data["config.json"]["variables"]["_token_keys"] == {"$A": "A"}
    assert data["A"] == "1"


def test_builders_are_token_builders():
    assert issubclass(TokenJsonBuilder, TokenBuilder)
    assert isinstance(TokenYamlBuilder(CAL_YAML), TokenBuilder)
    with pytest.raises(TypeError):
        TokenBuilder()


def test_a_custom_builder_needs_only_data():
    class Fixed(TokenBuilder):
        @property
        def data(self):
            return {"OBSID": "L1"}

    assert Fixed().data == {"OBSID": "L1"}
    assert Fixed().job == {}


# --- no mutation ---------------------------------------------------------------------


def test_input_is_not_mutated(cal_config):
    before = copy.deepcopy(cal_config)
    TokenDictBuilder(cal_config).data
    assert cal_config == before
    assert "variables" in cal_config["Token"]


def test_data_is_a_new_deep_copy_each_time(cal_config):
    builder = TokenDictBuilder(cal_config)
    first = builder.data
    first["OBSID"] = "changed"
    first["upload"]["gzip"] = True
    first["config.json"]["variables"]["_attachments"]["$NEW"] = "x"
    first["config.json"]["sandbox"]["scripts"].append("x")
    second = builder.data
    assert second["OBSID"] == "L229585"
    assert second["upload"]["gzip"] is False
    assert "$NEW" not in second["config.json"]["variables"]["_attachments"]
    assert len(second["config.json"]["sandbox"]["scripts"]) == 1
    assert second is not first


def test_changing_the_input_later_does_not_change_the_builder(cal_config):
    builder = TokenDictBuilder(cal_config)
    cal_config["Job"]["variables"]["OBSID"] = "L1"
    cal_config["container"]["singularity"]["SIMG"] = "other"
    assert builder.data["OBSID"] == "L229585"
    assert builder.data["config.json"]["container"]["singularity"]["SIMG"].startswith("shub://")


def test_job_is_a_copy(cal_config):
    builder = TokenDictBuilder(cal_config)
    builder.job["NCPU"] = 1
    assert builder.job["NCPU"] == 6


# --- PicasApiVersion -----------------------------------------------------------------


@pytest.mark.parametrize("version", [0.5, "0.5", 1, 0.6, "2.0"])
def test_supported_versions(version):
    builder = TokenDictBuilder({"PicasApiVersion": version, "Job": {"variables": {"OBSID": "L1"}}})
    assert builder.api_version == float(version)
    assert "PicasApiVersion" not in builder.data
    assert "PicasApiVersion" not in builder.data["config.json"]


@pytest.mark.parametrize("version", [0.4, "0.4", 0, -1])
def test_old_versions_refused(version, tmp_path):
    path = write(tmp_path, "old.json", json.dumps({"PicasApiVersion": version}))
    with pytest.raises(ConfigError) as info:
        TokenJsonBuilder(path)
    assert str(info.value) == (
        f"PicasApiVersion {version} in {path} is older than 0.5, the oldest format this tool reads"
    )


@pytest.mark.parametrize("version", ["abc", "", "0.5.1", None, True, [0.5], "nan", "inf"])
def test_non_numeric_versions_refused(version):
    with pytest.raises(ConfigError, match=r"my\.json: PicasApiVersion: .* is not a version number"):
        TokenDictBuilder({"PicasApiVersion": version}, source="my.json")


def test_missing_version_is_fine():
    assert TokenDictBuilder({"Token": {}}).api_version is None


# --- YAML scalars ----------------------------------------------------------------------


def test_yaml_keeps_leading_zero_numbers_as_strings(tmp_path):
    path = write(
        tmp_path,
        "t.yaml",
        "Job:\n  NCPU: 6\n  variables:\n    STARTSB: 000\n    OTHER: 0123\n    HEX: 0x1F\n"
        "    SEX: 1:30\n    DATE: 2020-01-01\n    ZERO: 0\n    NEG: -3\n    F: 1.5\n",
    )
    builder = TokenYamlBuilder(path)
    data = builder.data
    assert data["STARTSB"] == "000"
    assert data["OTHER"] == "0123"
    assert data["HEX"] == "0x1F"
    assert data["SEX"] == "1:30"
    assert data["DATE"] == "2020-01-01"
    assert data["ZERO"] == 0 and data["NEG"] == -3 and data["F"] == 1.5
    assert builder.job["NCPU"] == 6 and isinstance(builder.job["NCPU"], int)


def test_yaml_is_read_safely(tmp_path):
    path = write(tmp_path, "evil.yaml", "Token: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="evil.yaml: line 1"):
        TokenYamlBuilder(path)


# --- errors, each naming the file (and the key) -------------------------------------------


def test_bad_json_syntax_names_file_and_line(tmp_path):
    path = write(tmp_path, "broken.json", '{\n  "Token": {\n    "status": "queued",\n  }\n}\n')
    with pytest.raises(ConfigError) as info:
        TokenJsonBuilder(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 4" in message
    assert "invalid JSON" in message


def test_bad_yaml_syntax_names_file_and_line(tmp_path):
    path = write(tmp_path, "broken.yaml", "Token:\n  status: queued\n  times: [1, 2\nJob: {}\n")
    with pytest.raises(ConfigError) as info:
        TokenYamlBuilder(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 4" in message
    assert "invalid YAML" in message


@pytest.mark.parametrize("cls", [TokenJsonBuilder, TokenYamlBuilder, load_token_config])
def test_missing_file_named(cls, tmp_path):
    path = tmp_path / "nowhere.json"
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: no such file$"):
        cls(path)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match=rf"{re.escape(str(tmp_path))}: is a folder"):
        TokenJsonBuilder(tmp_path)


def test_empty_yaml_file(tmp_path):
    path = write(tmp_path, "empty.yaml", "# nothing\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: the file is empty"):
        TokenYamlBuilder(path)


@pytest.mark.parametrize("text", ["[1, 2]", '"text"', "3", "null"])
def test_top_level_must_be_a_mapping(text, tmp_path):
    path = write(tmp_path, "list.json", text)
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: the top level must be a mapping"):
        TokenJsonBuilder(path)


@pytest.mark.parametrize(
    "config, key",
    [
        ({"Token": ["status"]}, "Token"),
        ({"Token": None}, "Token"),
        ({"Job": "run.sh"}, "Job"),
        ({"Job": {"variables": ["OBSID"]}}, "Job.variables"),
        ({"Token": {"variables": "x"}}, "Token.variables"),
        ({"Token": {"variables": {"_token_keys": ["$A"]}}}, "Token.variables._token_keys"),
        ({"Token": {"variables": {"_attachments": {"$A": 1}}}}, "Token.variables._attachments.$A"),
        ({"variables": 3}, "variables"),
    ],
)
def test_wrong_section_types_name_the_key(config, key):
    with pytest.raises(ConfigError) as info:
        TokenDictBuilder(config, source="cfg.json")
    assert str(info.value).startswith(f"cfg.json: {key}: expected a")


def test_wrong_types_in_a_yaml_file_name_file_and_key(tmp_path):
    path = write(tmp_path, "t.yaml", "Job:\n  variables: [OBSID]\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: Job.variables: expected a mapping"):
        TokenYamlBuilder(path)


@pytest.mark.parametrize(
    "config, key",
    [
        ({"Token": {"_id": "x"}}, "Token._id"),
        ({"Job": {"variables": {"_rev": "1"}}}, "Job.variables._rev"),
        ({"Token": {"config.json": {}}}, "Token.config.json"),
    ],
)
def test_reserved_field_names_refused(config, key):
    with pytest.raises(ConfigError, match=f"^t.json: {key}: .* cannot be a token field"):
        TokenDictBuilder(config, source="t.json")


def test_job_variable_clashing_with_token_field_refused():
    config = {"Token": {"status": "queued"}, "Job": {"variables": {"status": "x"}}}
    with pytest.raises(ConfigError, match="t.json: Job.variables.status: clashes with Token.status"):
        TokenDictBuilder(config, source="t.json")


def test_variables_in_two_places_refused():
    config = {"Token": {"variables": {}}, "variables": {}}
    with pytest.raises(ConfigError, match="t.json: variables: given both"):
        TokenDictBuilder(config, source="t.json")


def test_duplicate_keys_refused(tmp_path):
    json_path = write(tmp_path, "d.json", '{"Token": {"status": "a", "status": "b"}}')
    with pytest.raises(ConfigError, match=rf"{re.escape(str(json_path))}: duplicate key 'status'"):
        TokenJsonBuilder(json_path)
    yaml_path = write(tmp_path, "d.yaml", "Token:\n  status: a\n  status: b\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(yaml_path))}: line 3.*duplicate key 'status'"):
        TokenYamlBuilder(yaml_path)


def test_json_nan_refused(tmp_path):
    path = write(tmp_path, "n.json", '{"Job": {"variables": {"X": NaN}}}')
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: NaN is not JSON"):
        TokenJsonBuilder(path)


def test_values_a_document_cannot_hold_refused(tmp_path):
    path = write(tmp_path, "b.yaml", "Job:\n  variables:\n    X: !!binary aGk=\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: Job.variables.X: a bytes cannot be stored"):
        TokenYamlBuilder(path)
    with pytest.raises(ConfigError, match="^<dict>: Token.times: key 1 is not a string$"):
        TokenDictBuilder({"Token": {"times": {1: 2}}})


# --- load_token_config -------------------------------------------------------------------


def test_load_by_suffix(tmp_path):
    assert isinstance(load_token_config(CAL_JSON), TokenJsonBuilder)
    assert isinstance(load_token_config(CAL_YAML), TokenYamlBuilder)
    yml = write(tmp_path, "x.YML", CAL_YAML.read_text())
    assert isinstance(load_token_config(yml), TokenYamlBuilder)
    assert load_token_config(str(yml)).data == load_token_config(CAL_JSON).data


@pytest.mark.parametrize("name", ["token.txt", "token", "token.json.bak"])
def test_unknown_suffix_refused(name, tmp_path):
    path = write(tmp_path, name, "{}")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: a token configuration must end in .json, .yaml or .yml"):
        load_token_config(path)
