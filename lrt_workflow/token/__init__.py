"""PiCaS tokens: the model, the configuration builders, the views, and all CouchDB traffic for tokens.

The classic names of the GRID_LRT tools live here, so ``from lrt_workflow.token
import TokenList, TokenSet, ...`` works as it did. New code can use the bulk
engine `TokenStore` directly.
"""

from lrt_workflow.token.archive import archive_tokens, read_archive, restore
from lrt_workflow.token.builders import (
    TokenBuilder,
    TokenDictBuilder,
    TokenJsonBuilder,
    TokenYamlBuilder,
    load_token_config,
)
from lrt_workflow.token.classic import (
    TokenHandler,
    TokenList,
    TokenReduceView,
    TokenSet,
    TokenView,
    caToken,
    get_all_design_docs,
    purge_tokens,
    reset_all_tokens,
)
from lrt_workflow.token.model import Token, reset_fields, token_id
from lrt_workflow.token.store import CreateReport, TokenStore
from lrt_workflow.token.views import InvalidTokenType

__all__ = [
    "Token", "caToken", "TokenBuilder", "TokenDictBuilder", "TokenJsonBuilder", "TokenYamlBuilder",
    "TokenView", "TokenReduceView", "TokenList", "TokenSet", "TokenHandler",
    "get_all_design_docs", "reset_all_tokens", "purge_tokens",
    "TokenStore", "CreateReport", "InvalidTokenType", "archive_tokens", "read_archive", "restore",
    "load_token_config", "reset_fields", "token_id",
]
