"""Archives of tokens: every document and attachment, written so it can be restored.

Layout, inside ``tokens_<type>.tar.gz`` or a folder ``<type>/``::

    <type>/manifest.json            what is in the archive, with a checksum per file
    <type>/tokens/<id>.json         the token document, without ``_rev``
    <type>/attachments/<id>/<name>  each attachment, its name percent-encoded

`restore` puts the tokens back into a database, so a purge after an archive
is not the end of the world.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import time
import urllib.parse
from pathlib import Path
from typing import Iterator, Sequence

from lrt_workflow import __version__
from lrt_workflow.errors import LrtError
from lrt_workflow.files import atomic_file

FORMAT = "lrt_workflow token archive 1"


class ArchiveError(LrtError):
    """An archive is unreadable, incomplete or altered."""


def attachment_filename(name: str) -> str:
    """The file name a worker or a download uses for an attachment: ``/`` becomes ``_``."""
    return name.replace("/", "_")


def _member_name(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def export_tokens(store, ids: Sequence[str] | None = None) -> Iterator[tuple[dict, dict[str, bytes]]]:
    """Each token (without ``_rev``) and its attachments' bytes, fetched in bulk batches."""
    ids = store.all_ids() if ids is None else list(ids)
    for start in range(0, len(ids), store.batch_size):
        for doc in store.fetch(ids[start:start + store.batch_size], attachments=True):
            files = {
                name: base64.b64decode(meta["data"])
                for name, meta in doc.pop("_attachments", {}).items()
            }
            doc.pop("_rev", None)
            yield doc, files


def _entries(store, ids) -> Iterator[tuple[str, bytes]]:
    """(path inside the archive, bytes) for every file, the manifest last."""
    prefix = store.token_type
    manifest = {
        "format": FORMAT,
        "token_type": store.token_type,
        "database": store.db.database_name,
        "created": int(time.time()),
        "lrt_workflow_version": __version__,
        "tokens": {},
    }
    for doc, files in export_tokens(store, ids):
        body = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        doc_path = f"{prefix}/tokens/{_member_name(doc['_id'])}.json"
        yield doc_path, body
        entry = {"file": doc_path, "sha256": hashlib.sha256(body).hexdigest(), "attachments": {}}
        for name, data in files.items():
            path = f"{prefix}/attachments/{_member_name(doc['_id'])}/{_member_name(name)}"
            yield path, data
            entry["attachments"][name] = {"file": path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        manifest["tokens"][doc["_id"]] = entry
    yield f"{prefix}/manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def archive_tokens(store, folder: str | os.PathLike, ids: Sequence[str] | None = None, *,
                   compress: bool = True, name: str | None = None) -> Path:
    """Write the tokens (all of the type by default) and their attachments.

    With ``compress`` the result is ``folder/tokens_<type>.tar.gz`` (or
    ``name``), written to a temporary file first, so an interrupted archive
    never looks complete. Without, it is the folder ``folder/<type>/``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not compress:
        for path, data in _entries(store, ids):
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return folder / store.token_type
    target = folder / (name or f"tokens_{store.token_type}.tar.gz")
    with atomic_file(target) as file, tarfile.open(fileobj=file, mode="w:gz") as tar:
        for path, data in _entries(store, ids):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = int(time.time())
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return target


def read_archive(path: str | os.PathLike) -> tuple[dict, list[tuple[dict, dict[str, bytes]]]]:
    """(manifest, [(token, {attachment name: bytes})]) from an archive file or folder, checksums verified."""
    path = Path(path)
    files: dict[str, bytes] = {}
    if path.is_dir():
        for file in path.rglob("*"):
            if file.is_file():
                files[file.relative_to(path.parent).as_posix()] = file.read_bytes()
    else:
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        files[member.name] = tar.extractfile(member).read()
        except (OSError, tarfile.TarError) as error:
            raise ArchiveError(f"cannot read token archive {path}: {error}") from None
    manifests = [name for name in files if name.endswith("/manifest.json")]
    if len(manifests) != 1:
        raise ArchiveError(f"{path} is not a token archive: it holds {len(manifests)} manifests, not 1")
    manifest = json.loads(files[manifests[0]])
    tokens = []
    for token_id, entry in manifest["tokens"].items():
        body = _checked(files, entry, path)
        attachments = {name: _checked(files, meta, path) for name, meta in entry["attachments"].items()}
        tokens.append((json.loads(body), attachments))
    return manifest, tokens


def _checked(files: dict[str, bytes], entry: dict, archive: Path) -> bytes:
    data = files.get(entry["file"])
    if data is None:
        raise ArchiveError(f"{archive} lacks {entry['file']}")
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ArchiveError(f"{entry['file']} in {archive} does not match its checksum")
    return data


def restore(store, path: str | os.PathLike):
    """Create the archived tokens, with their attachments, in ``store``'s database.

    Tokens that exist already are left alone. Returns the `CreateReport`.
    """
    manifest, tokens = read_archive(path)
    if manifest["token_type"] != store.token_type:
        raise ArchiveError(f"{path} holds tokens of type {manifest['token_type']!r}, not {store.token_type!r}")
    store.ensure_design()
    return store.create([doc for doc, _ in tokens], {doc["_id"]: files for doc, files in tokens if files})
