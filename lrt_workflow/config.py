"""The workflow configuration (``config.yaml``): read, fill in defaults, validate.

The schema in ``schema/config.schema.json`` is the single source of truth,
and this module is its only reader: the Snakefile and every ``lrt`` command
validate through `validate_config`, so they can never disagree about what is
allowed. It adds what a schema alone does badly: every problem reported at
once with its key path, a specific message for a password, strict integers,
and YAML read so that ``010`` stays a string instead of turning into 8.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator, Mapping

from jsonschema import Draft202012Validator, validators

from lrt_workflow import pipeline
from lrt_workflow.errors import ConfigError
from lrt_workflow.files import read_yaml

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "config.schema.json"

PASSWORD_MESSAGE = "{source} must not hold a password: use PICAS_PASSWORD or ~/.picasrc"

# Matches "password", "PICAS_PASSWORD", "passwd", "couch_pwd": any key that
# plainly holds a secret, wherever it sits (token.fields would even copy it
# onto every token in the database).
_PASSWORD_KEY = re.compile(r"(^|_)(password|passwd|pwd)$", re.IGNORECASE)


def _is_strict_integer(checker, instance) -> bool:
    # jsonschema counts 10.0 as an integer; a chunk size of 10.0 would then
    # reach range() and fail far from the configuration.
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer),
)


@functools.cache
def _schema() -> dict:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


def load_schema() -> dict:
    """A copy of the configuration schema (callers may change it)."""
    return copy.deepcopy(_schema())


def _apply_defaults(instance: Any, schema: Mapping) -> None:
    """Fill in schema defaults, in place, the way snakemake's validate does.

    A section's default is ``{}``, which is then filled in turn, so an absent
    section ends up complete.
    """
    if not isinstance(instance, dict):
        return
    for name, subschema in schema.get("properties", {}).items():
        if name not in instance and "default" in subschema:
            instance[name] = copy.deepcopy(subschema["default"])
        if name in instance:
            _apply_defaults(instance[name], subschema)


def _key_path(parts) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _password_paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _PASSWORD_KEY.search(key):
                yield path + (key,)
            yield from _password_paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _password_paths(item, path + (index,))


def _describe(error) -> list[str]:
    """One or more plain messages for a jsonschema error, without its path."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if "propertyNames" in error.absolute_schema_path:
        # error.schema is the propertyNames subschema; the instance is the key.
        return [f"key {error.instance!r} is not allowed: {schema.get('description', error.message)}"]
    if error.validator == "additionalProperties":
        known = schema.get("properties", {})
        return [
            f"unknown key {key!r}" + _did_you_mean(key, known) for key in error.instance
            if key not in known and not (isinstance(key, str) and _PASSWORD_KEY.search(key))
        ]
    if error.validator == "required":
        # jsonschema makes one error per missing key; list them all, in a stable order, and dedupe later.
        return [f"missing required key {key!r}" for key in sorted(error.validator_value) if key not in error.instance]
    if error.validator == "format" and error.validator_value == "regex":
        return [f"{error.instance!r} is not a valid regular expression"]
    if error.validator in ("pattern", "oneOf") and "description" in schema:
        return [f"{error.instance!r} is not allowed: {schema['description']}"]
    return [error.message]


def _did_you_mean(key, known) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _problems(config: dict, source: str) -> list[str]:
    problems = [f"{source}: {problem}" for problem in pipeline.problems(config, cross_checks=False)]
    for parts in _password_paths(config):
        problems.append(PASSWORD_MESSAGE.format(source=source) + f" (found {_key_path(parts)})")
    validator = _Validator(_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(config), key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    for error in errors:
        path = _key_path(error.absolute_path)
        for message in _describe(error):
            line = f"{source}: {path}: {message}" if path else f"{source}: {message}"
            if line not in problems:  # one per missing key, not one per sibling error
                problems.append(line)
    if not errors and not problems:  # the steps' references, once every key is sound
        problems += [f"{source}: {problem}" for problem in pipeline.problems(config)]
    return problems


def validate_config(config: Mapping, source: str = "config.yaml") -> dict:
    """A validated copy of ``config`` with the schema's defaults filled in.

    Raises ConfigError listing every problem, one per line, each with the
    key path, so a user fixes the file in one go. The input is not changed.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values, not {type(config).__name__}")
    result = copy.deepcopy(dict(config))
    _apply_defaults(result, _schema())
    problems = _problems(result, source)
    if problems:
        error = ConfigError("\n".join(problems))
        error.problems = problems
        raise error
    return result


def load_config(path: str | os.PathLike) -> dict:
    """Read, complete and validate a workflow configuration file.

    Relative paths in it are kept as written: Snakemake resolves them against
    its working directory, and so must every other reader.
    """
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    return validate_config(data, source=str(path))


def referenced_files(config: Mapping) -> list[tuple[str, str]]:
    """``(key path, file name)`` of every input file a configuration names, for one step or a pipeline."""
    def token_files(token: Mapping, where: str) -> list[tuple[str, object]]:
        return [(f"{where}.template", token.get("template"))] + [
            (f"{where}.attachments[{i}]", name) for i, name in enumerate(token.get("attachments") or [])]

    if config.get("steps"):
        files = [(f"observations.{name}", path) for name, path in (config.get("observations") or {}).items()]
        for name, section in config["steps"].items():
            files += token_files(section.get("token") or {}, f"steps.{name}.token")
    else:
        files = [("srm_file", config.get("srm_file"))] + token_files(config.get("token") or {}, "token")
    return [(key, name) for key, name in files if isinstance(name, str)]


def check_files(config: Mapping, base_dir: str | os.PathLike | None = None) -> None:
    """Raise ConfigError listing every referenced file that is missing.

    Kept apart from validation so a configuration can be checked (and its
    defaults seen) before the files exist. Relative names are looked up in
    ``base_dir``, by default the working directory, as Snakemake does.
    """
    problems = []
    for key, name in referenced_files(config):
        path = Path(name)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        if not path.exists():
            problems.append(f"{key}: {name}: no such file")
        elif not path.is_file():
            problems.append(f"{key}: {name}: not a regular file")
    if problems:
        error = ConfigError("files named in the configuration cannot be used:\n  " + "\n  ".join(problems))
        error.problems = problems
        raise error


def merge(base: Mapping, overlay: Mapping) -> dict:
    """``overlay`` over ``base``, nested mappings merged key by key, as Snakemake merges ``--configfile`` overlays."""
    result = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def load_configs(paths: list[str | os.PathLike]) -> dict:
    """Several configuration files merged in order, then completed and validated once."""
    if len(paths) == 1:
        return load_config(paths[0])
    merged: dict = {}
    for path in paths:
        data = read_yaml(path)
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
        merged = merge(merged, data)
    return validate_config(merged, source=" + ".join(str(p) for p in paths))
