"""The house rules of the package, checked: a pure model, one door to CouchDB, small modules."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lrt_workflow"
#: Modules that talk to a network or start processes; the pure model must not load any of them.
IO_MODULES = ("requests", "urllib3", "cloudant", "http.client", "socket", "subprocess",
              "lrt_workflow.couchdb", "lrt_workflow.pilot", "lrt_workflow.steps", "lrt_workflow.archive")
#: The only modules that may speak HTTP, and what each may use.
HTTP_DOORS = {
    "couchdb/client.py": {"requests", "urllib3", "cloudant"},
    "couchdb/store.py": set(),  # through the client's session only
    "couchdb/documents.py": set(),
    "couchdb/embedded.py": {"urllib"},  # asks its own server on loopback whether it is up
    # The classic API stands on the cloudant client, as GRID_LRT's did: caToken is a cloudant Document,
    # and TokenHandler accepts a cloudant database. Their requests still go through TokenStore.
    "classic/token.py": {"cloudant"},
    "classic/handler.py": {"cloudant"},
}
HTTP_IMPORTS = ("requests", "urllib3", "cloudant", "http", "urllib.request", "urllib.error")


@pytest.mark.parametrize("module", ["lrt_workflow.token.model", "lrt_workflow.token", "lrt_workflow.srmlist"])
def test_the_pure_model_imports_no_io_module(module):
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert [m for m in loaded if m.startswith(IO_MODULES)] == []


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_couchdb_modules_speak_http():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        http = {name for name in imported_modules(path) if name.startswith(HTTP_IMPORTS)}
        allowed = HTTP_DOORS.get(relative, set())
        extra = {name for name in http if not name.startswith(tuple(allowed))} if allowed else http
        if extra:
            offenders[relative] = sorted(extra)
    assert offenders == {}


def test_no_module_is_over_450_lines():
    sizes = {path.relative_to(PACKAGE).as_posix(): len(path.read_text().splitlines())
             for path in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 450} == {}


def test_the_classic_grid_lrt_names_import_from_where_users_import_them():
    code = ("from lrt_workflow.token import Token, TokenBuilder, TokenDictBuilder, TokenJsonBuilder, caToken, "
            "TokenList, TokenView, TokenReduceView, TokenSet, TokenHandler\n"
            "from lrt_workflow.srmlist import srmlist, SrmList, slice_dicts\n"
            "from lrt_workflow.couchdb import picas_cred, get_picas_cred\n"
            "assert Token.synchronize and caToken.save and TokenSet.create_dict_tokens")
    subprocess.run([sys.executable, "-c", code], check=True)
