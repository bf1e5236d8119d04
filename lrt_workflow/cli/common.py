"""Options shared by the commands that work on a database of tokens."""

from __future__ import annotations

import argparse
from pathlib import Path

from lrt_workflow.config import load_config
from lrt_workflow.couchdb import Target, TokenStore, resolve
from lrt_workflow.errors import ConfigError

DEFAULT_CONFIG = "config.yaml"


def add_target_options(parser: argparse.ArgumentParser, *, token_type: bool = True) -> None:
    group = parser.add_argument_group(
        "where the tokens are",
        "Taken from these options, then PICAS_URL / PICAS_DATABASE, then ~/.picasrc, then config.yaml. "
        "The password only ever comes from PICAS_PASSWORD or ~/.picasrc.",
    )
    group.add_argument("--config", metavar="FILE",
                       help=f"the workflow's config.yaml (default: ./{DEFAULT_CONFIG} if it exists)")
    group.add_argument("--url", help="CouchDB URL, or 'embedded' for the project's own server")
    group.add_argument("--database", help="database name")
    if token_type:
        group.add_argument("--type", dest="token_type", help="token type (default: token.type of config.yaml)")


def config_from_args(args) -> dict:
    path = args.config or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).exists() else None)
    return load_config(path) if path else {}


def target_from_args(args, config: dict | None = None) -> Target:
    config = config_from_args(args) if config is None else config
    return resolve(config.get("couchdb"), url=args.url, database=args.database)


def store_from_args(args, config: dict | None = None, *, design: str | None = None) -> TokenStore:
    config = config_from_args(args) if config is None else config
    token_type = getattr(args, "token_type", None) or config.get("token", {}).get("type")
    if not token_type:
        raise ConfigError("no token type: pass --type or set token.type in config.yaml")
    return TokenStore(target_from_args(args, config).open(), token_type, design=design)
