"""Reading and writing the files the workflow keeps: safely, with errors that name the file.

* Writes are atomic: the data goes to a uniquely named file beside the
  target, which then replaces it. A reader never sees half a file, a crash
  leaves none, and parallel runs never share a temporary file.
* YAML is read with a safe loader that keeps ``000``, ``0123`` and dates as
  the text written, and refuses duplicate keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import IO, Any, Iterator

import yaml

from lrt_workflow.errors import ConfigError, LrtError


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` when the block ends without an error, and is removed
    when it fails. Its folder is created."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never write through someone else's file; 0o666 lets the umask decide, as for any file.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as file:
            yield file
        os.replace(partial, path)
    except OSError as error:
        raise LrtError(f"{path}: cannot write: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` all at once."""
    with atomic_file(path) as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: line {error.lineno}, column {error.colno}: invalid JSON: {error.msg}") from None


def read_text(path: str | os.PathLike) -> str:
    """The file's text, or a ConfigError naming the file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


# YAML 1.1 reads 0123 as octal (83), 000 as 0, 1_000 as 1000 and 1:30 as 90.
# Subband numbers and ids look like that and must keep their exact spelling,
# so only canonical decimal integers become ints.
_CANONICAL_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_INT_TAG = "tag:yaml.org,2002:int"
# YAML 1.1 also turns 2020-01-01 into a datetime.date, which a CouchDB
# document (plain JSON) cannot hold: keep dates as the text written.
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlLoader(yaml.SafeLoader):
    """A safe loader that keeps non-canonical integers and dates as strings and refuses duplicate keys.

    A duplicate key is almost always an editing mistake, and the plain safe
    loader silently keeps the last value.
    """

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(_INT_TAG, _CANONICAL_INT, list("-+0123456789"))


def read_yaml(path: str | os.PathLike) -> Any:
    """Parse a YAML file with `YamlLoader`; syntax errors name the file and line."""
    text = read_text(path)
    try:
        return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - YamlLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(f"{path}: {where}invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
