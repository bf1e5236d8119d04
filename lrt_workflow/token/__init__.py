"""PiCaS tokens: the pure model. No I/O is imported here.

* `model`: the token document (`Token`, `new_token`, `token_id`);
* `modifiers`: every change of a token's state (claim, finish, reset...);
* `views`: the design document's JavaScript views;
* `builders`: GRID_LRT token configurations (JSON or YAML) turned into fields.

The classic GRID_LRT names that talk to CouchDB (`caToken`, `TokenList`,
`TokenSet`, `TokenHandler`, ...), the bulk engine `TokenStore` and the
archives are importable from here as before; they live in
`lrt_workflow.classic`, `lrt_workflow.couchdb` and `lrt_workflow.archive`,
and are loaded only when first used, so ``import lrt_workflow.token.model``
stays free of I/O.
"""

import importlib

from lrt_workflow.token.builders import (
    TokenBuilder,
    TokenDictBuilder,
    TokenJsonBuilder,
    TokenYamlBuilder,
    load_token_config,
)
from lrt_workflow.token.model import new_token, token_id
from lrt_workflow.token.views import InvalidTokenType

#: Names served from the modules that do I/O, loaded on first use.
_ELSEWHERE = {
    **dict.fromkeys(("Token", "caToken", "TokenView", "TokenReduceView", "TokenList"), "lrt_workflow.classic.token"),
    **dict.fromkeys(("TokenSet", "TokenHandler", "get_all_design_docs", "reset_all_tokens", "purge_tokens"),
                    "lrt_workflow.classic.handler"),
    **dict.fromkeys(("TokenStore", "CreateReport"), "lrt_workflow.couchdb.store"),
    **dict.fromkeys(("archive_tokens", "read_archive", "restore"), "lrt_workflow.archive"),
}

__all__ = [
    "Token", "caToken", "TokenBuilder", "TokenDictBuilder", "TokenJsonBuilder", "TokenYamlBuilder",
    "TokenView", "TokenReduceView", "TokenList", "TokenSet", "TokenHandler",
    "get_all_design_docs", "reset_all_tokens", "purge_tokens",
    "TokenStore", "CreateReport", "InvalidTokenType", "archive_tokens", "read_archive", "restore",
    "load_token_config", "new_token", "token_id",
]


def __getattr__(name: str):
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
