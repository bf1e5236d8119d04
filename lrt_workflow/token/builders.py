"""Token configurations in the GRID_LRT format, turned into token fields.

A token configuration (JSON or YAML) describes what every token of one kind
carries. Its sections end up in three places:

* ``Token``: fields copied onto the token (``status``, ``times``, ``upload``...),
  except ``Token.variables``, which the worker reads from
  ``config.json.variables`` (``_token_keys`` and ``_attachments``);
* ``Job.variables``: fields copied onto the token's top level (``OBSID``,
  ``STARTSB``...), because ``_token_keys`` points the worker at them there;
* the other ``Job`` keys (``NCPU``, ``queue``, ``command``...): how to submit
  the job, so they are kept apart in `TokenBuilder.job`, not on the token;
* every other top-level section (``container``, ``sandbox``, ``downloader``...):
  copied into ``config.json`` for the worker.

The builders only read the file they are given: no database, no network.
The class names are those users' notebooks already use.
"""

from __future__ import annotations

import abc
import copy
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from lrt_workflow.files import read_text, read_yaml
from lrt_workflow.errors import ConfigError

#: Older configurations do not describe the fields the worker needs.
MIN_API_VERSION = 0.5
CONFIG_KEY = "config.json"
#: The top-level keys with a meaning of their own; every other one goes to config.json.
SECTIONS = ("PicasApiVersion", "Token", "Job")
#: Entries of config.json.variables the worker always reads.
WORKER_MAPS = ("_token_keys", "_attachments")


class TokenBuilder(abc.ABC):
    """The fields a token gets from one token configuration.

    ``data`` and ``job`` return new copies on every access, so a caller that
    changes one token's fields cannot change the next token's.
    """

    @property
    @abc.abstractmethod
    def data(self) -> dict:
        """The token fields, including ``config.json``."""

    @property
    def job(self) -> dict:
        """The job's submission parameters (``NCPU``, ``queue``, ``command``...)."""
        return {}


class TokenDictBuilder(TokenBuilder):
    """Builds token fields from a configuration already in memory.

    ``source`` names where the configuration came from, for error messages.
    The configuration is checked and translated once, here; it is never
    changed.
    """

    def __init__(self, config: Mapping, source: str = "<dict>"):
        self.source = str(source)
        self.api_version = _api_version(config, self.source)
        self._data, self._job = _translate(config, self.source)

    @property
    def data(self) -> dict:
        return copy.deepcopy(self._data)

    @property
    def job(self) -> dict:
        return copy.deepcopy(self._job)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source={self.source!r})"


class TokenJsonBuilder(TokenDictBuilder):
    """Builds token fields from a JSON token configuration file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        super().__init__(_read_json(self.path), source=str(path))


class TokenYamlBuilder(TokenDictBuilder):
    """Builds token fields from a YAML token configuration file (same structure as the JSON one).

    Integer-looking values that are not plain decimals (``000``, ``0123``)
    stay strings, as they would in JSON.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        config = read_yaml(self.path)
        if config is None:
            raise ConfigError(f"{path}: the file is empty")
        super().__init__(config, source=str(path))


def load_token_config(path: str | os.PathLike) -> TokenDictBuilder:
    """The builder for a token configuration file, chosen by its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return TokenJsonBuilder(path)
    if suffix in (".yaml", ".yml"):
        return TokenYamlBuilder(path)
    raise ConfigError(f"{path}: a token configuration must end in .json, .yaml or .yml, not {suffix or 'nothing'!r}")


def _read_json(path: Path) -> Any:
    text = read_text(path)

    def refuse_duplicates(pairs):
        # A repeated key is an editing mistake that json would hide by keeping the last one.
        result = {}
        for key, value in pairs:
            if key in result:
                raise ConfigError(f"{path}: duplicate key {key!r}")
            result[key] = value
        return result

    def refuse_constant(name):
        raise ConfigError(f"{path}: {name} is not JSON, and a CouchDB document cannot hold it")

    try:
        return json.loads(text, object_pairs_hook=refuse_duplicates, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from None


def _api_version(config: Any, source: str) -> float | None:
    if not isinstance(config, Mapping) or "PicasApiVersion" not in config:
        return None
    raw = config["PicasApiVersion"]
    try:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise ValueError
        version = float(raw)
        if not math.isfinite(version):
            raise ValueError
    except ValueError:
        raise ConfigError(f"{source}: PicasApiVersion: {raw!r} is not a version number such as 0.5") from None
    if version < MIN_API_VERSION:
        raise ConfigError(
            f"PicasApiVersion {raw} in {source} is older than {MIN_API_VERSION}, the oldest format this tool reads"
        )
    return version


_ABSENT = object()


def _mapping(value: Any, source: str, key: str) -> Mapping:
    """``value`` if it is a mapping, ``{}`` if absent, else a ConfigError naming ``key``."""
    if value is _ABSENT:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {key}: expected a mapping of keys to values, found {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {str: "a string", list: "a list", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _check_json(value: Any, source: str, key: str) -> None:
    """Refuse what a CouchDB document (plain JSON) cannot hold, naming the key."""
    if isinstance(value, Mapping):
        for name, item in value.items():
            if not isinstance(name, str):
                raise ConfigError(f"{source}: {key}: key {name!r} is not a string")
            _check_json(item, source, f"{key}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, source, f"{key}[{index}]")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {key}: {value!r} is not allowed in a CouchDB document")
    elif not (value is None or isinstance(value, (str, int, bool))):
        raise ConfigError(f"{source}: {key}: a {type(value).__name__} cannot be stored in a token")


def _field_name(name: Any, source: str, key: str) -> str:
    # CouchDB reserves top-level names that start with "_" (_id, _rev, _attachments).
    if not isinstance(name, str) or not name or name.startswith("_") or name == CONFIG_KEY:
        raise ConfigError(f"{source}: {key}: {name!r} cannot be a token field")
    return name


def _translate(config: Any, source: str) -> tuple[dict, dict]:
    """The token fields and job parameters of one configuration, as new objects."""
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"{source}: the top level must be a mapping of sections (Token, Job, ...), found {_kind(config)}"
        )
    for name, value in config.items():
        if not isinstance(name, str):
            raise ConfigError(f"{source}: top-level key {name!r} is not a string")
        if name != "PicasApiVersion":
            _check_json(value, source, name)

    token = _mapping(config.get("Token", _ABSENT), source, "Token")
    job = _mapping(config.get("Job", _ABSENT), source, "Job")
    job_variables = _mapping(job.get("variables", _ABSENT), source, "Job.variables")

    # Token.variables is the usual place; a top-level "variables" is where the
    # original put it after reading, so accept either but not both.
    if "variables" in token and "variables" in config:
        raise ConfigError(f"{source}: variables: given both as Token.variables and at the top level; keep one")
    if "variables" in token:
        variables = _mapping(token["variables"], source, "Token.variables")
        variables_key = "Token.variables"
    else:
        variables = _mapping(config.get("variables", _ABSENT), source, "variables")
        variables_key = "variables"
    for name in WORKER_MAPS:
        table = _mapping(variables.get(name, _ABSENT), source, f"{variables_key}.{name}")
        for var, target in table.items():
            if not isinstance(target, str):
                raise ConfigError(f"{source}: {variables_key}.{name}.{var}: expected a string, found {_kind(target)}")

    data: dict = {}
    for name, value in token.items():
        if name != "variables":
            data[_field_name(name, source, f"Token.{name}")] = copy.deepcopy(value)
    for name, value in job_variables.items():
        _field_name(name, source, f"Job.variables.{name}")
        if name in data:
            # The original let the job variable win silently; two values for one field is a mistake.
            raise ConfigError(f"{source}: Job.variables.{name}: clashes with Token.{name}; keep one")
        data[name] = copy.deepcopy(value)

    worker_config = {"variables": {name: {} for name in WORKER_MAPS}}
    worker_config["variables"].update(copy.deepcopy(dict(variables)))
    for name, value in config.items():
        if name not in SECTIONS and name != "variables":
            worker_config[name] = copy.deepcopy(value)
    data[CONFIG_KEY] = worker_config

    job_parameters = {name: copy.deepcopy(value) for name, value in job.items() if name != "variables"}
    return data, job_parameters
