"""``lrt tokens create``: one token per chunk of an srm list, without the workflow."""

from __future__ import annotations

import os
from pathlib import Path

from lrt_workflow.cli.common import add_target_options, config_from_args, database, settings_for
from lrt_workflow.couchdb import TokenStore
from lrt_workflow.errors import ConfigError
from lrt_workflow.srmlist import chunk_plan, read_srm_file
from lrt_workflow.steps import subband_pattern
from lrt_workflow.steps.tokens import build_tokens
from lrt_workflow.token import load_token_config


def register(subparsers) -> None:
    parser = subparsers.add_parser("tokens", help="create tokens by hand",
                                   description="Token sets by hand, the way the workflow's tokens step makes them.")
    commands = parser.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = commands.add_parser(
        "create", help="one token per chunk of an srm list, idempotently",
        description="Validate the srm list, cut it into chunks, and create one token per chunk from the token "
                    "configuration, with the chunk's links attached as srm.txt. Tokens that exist already are "
                    "left as they are (unless --overwrite), so running it twice creates nothing twice.",
    )
    create.add_argument("srm_file", help="the srm list")
    create.add_argument("--template", help="token configuration, JSON or YAML (default: token.template of config.yaml)")
    create.add_argument("--size", type=int, help="subbands per token (default: chunk_size of config.yaml, else 10)")
    create.add_argument("--attach", action="append", default=[], metavar="FILE",
                        help="also attach FILE to every token (repeatable)")
    create.add_argument("--pattern-prefix", help="text before a subband number (default SB)")
    create.add_argument("--pattern-suffix", help="regex for the character after it (default [_.])")
    create.add_argument("--overwrite", action="store_true", help="replace tokens that exist, progress and all")
    add_target_options(create)
    create.set_defaults(func=cmd_create)


def cmd_create(args) -> int:
    config = config_from_args(args)
    settings = settings_for(config, step=args.step, token_type=args.token_type)
    token_section = {"fields": {}, "command": None, **(settings.get("token") or {})}
    token_section["type"] = args.token_type or token_section.get("type")
    template = args.template or token_section.get("template")
    if not token_section["type"]:
        raise ConfigError("no token type: pass --type, or --step of the configuration")
    if not template:
        raise ConfigError("no token configuration: pass --template, or --step of the configuration")
    pattern = dict(settings.get("subband_pattern") or {})
    if args.pattern_prefix:
        pattern["prefix"] = args.pattern_prefix
    if args.pattern_suffix:
        pattern["suffix"] = args.pattern_suffix
    size = args.size or settings.get("chunk_size") or 10
    builder = load_token_config(template)
    parsed = read_srm_file(args.srm_file, pattern=subband_pattern({"subband_pattern": pattern}))
    missing = [name for name in args.attach if not Path(name).is_file()]
    if missing:
        raise ConfigError(f"attachment files not found: {', '.join(missing)}")
    attachments = {os.path.basename(name): Path(name).read_bytes() for name in args.attach}
    chunks = chunk_plan(parsed.links, size)
    tokens = build_tokens({"token": token_section}, builder.data, parsed.obsid, [chunk["name"] for chunk in chunks])
    files = {token["_id"]: {"srm.txt": "".join(f"{url}\n" for url in chunk["links"]).encode(), **attachments}
             for token, chunk in zip(tokens, chunks)}
    with database(args, config) as db:  # only now: bad input never touches CouchDB
        store = TokenStore(db, token_section["type"])
        store.ensure_design()
        report = store.create(tokens, files, overwrite=args.overwrite)
    print(f"{parsed.obsid}: {len(tokens)} chunks of {size}; {report}")
    return 0
