"""``lrt status|reset|purge|archive``: what people do by hand between runs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lrt_workflow.cli.common import add_target_options, config_from_args, store_from_args, target_from_args
from lrt_workflow.archive import archive_tokens
from lrt_workflow.couchdb.store import TokenStore, design_ids
from lrt_workflow.token.views import OVERVIEW, STATES


def register(subparsers) -> None:
    status = subparsers.add_parser(
        "status", help="token counts per state, for every token type in the database",
        description="Print how many tokens of each type are todo, locked, done and in error. "
                    "Every type with a design document that has the overview view is listed.",
    )
    add_target_options(status)
    status.add_argument("--watch", type=float, metavar="SECONDS", help="print again every SECONDS until interrupted")
    status.set_defaults(func=cmd_status)

    reset = subparsers.add_parser(
        "reset", help="put tokens back in todo",
        description="Reset (scrub) tokens: lock, done, output and hostname are cleared, scrub_count grows by one, "
                    "and the tokens are handed out again.",
    )
    add_target_options(reset)
    which = reset.add_mutually_exclusive_group(required=True)
    which.add_argument("--view", choices=("error", "locked", "done", "todo"), help="reset every token of this view")
    which.add_argument("--stale", type=float, metavar="SECONDS",
                       help="reset locked tokens whose worker has not sent a heartbeat (or, before the first one, "
                            "claimed it) for SECONDS")
    reset.add_argument("--max-scrub", type=int, metavar="N",
                       help="with --stale: a token reset N times already goes to error instead "
                            "(default: wait.max_scrub of config.yaml, else no limit)")
    reset.add_argument("--drop-logs", action="store_true", help="also remove the logs a worker attached")
    reset.set_defaults(func=cmd_reset)

    purge = subparsers.add_parser(
        "purge", help="delete every token of a type",
        description="Delete every token of the type (the design document stays, so a new run can use it). "
                    "Archive first: 'lrt archive'.",
    )
    add_target_options(purge)
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=cmd_purge)

    archive = subparsers.add_parser(
        "archive", help="write every token and its attachments to tokens_<type>.tar.gz",
        description="Archive every token of the type, with its attachments and logs, into one .tar.gz with a "
                    "manifest. The archive can be restored with TokenStore / lrt_workflow.token.restore.",
    )
    add_target_options(archive)
    archive.add_argument("--out", default=".", help="folder for the archive (default: .)")
    archive.set_defaults(func=cmd_archive)


def format_counts(token_type: str, counts: dict) -> str:
    return f"{token_type}: " + " ".join(f"{state}={counts[state]}" for state in (*STATES, "total"))


def cmd_status(args) -> int:
    config = config_from_args(args)
    db = target_from_args(args, config).open()
    while True:
        if args.token_type:
            types = [args.token_type]
        else:
            types = [d.split("/", 1)[1] for d in design_ids(db)]
        lines = []
        for token_type in types:
            store = TokenStore(db, token_type)
            if OVERVIEW in store.view_names():
                lines.append(format_counts(token_type, store.counts()))
        print("\n".join(lines) if lines else f"no token types in database {db.database_name}")
        if not args.watch:
            return 0
        sys.stdout.flush()
        time.sleep(args.watch)
        print()


def cmd_reset(args) -> int:
    config = config_from_args(args)
    store = store_from_args(args, config)
    if args.stale is not None:
        max_scrub = args.max_scrub if args.max_scrub is not None else (config.get("wait") or {}).get("max_scrub")
        ids = store.reset_stale(args.stale, max_scrub=max_scrub, drop_logs=args.drop_logs)
        print(f"reset {len(ids)} tokens silent for more than {args.stale:g} s (stale locks)")
    else:
        ids = store.reset_view(args.view, drop_logs=args.drop_logs)
        print(f"reset {len(ids)} tokens of view {args.view}")
    for token_id in ids:
        print(f"  {token_id}")
    return 0


def cmd_purge(args) -> int:
    store = store_from_args(args)
    count = store.counts()["total"]
    if count and not args.yes:
        if not sys.stdin.isatty():
            print(f"lrt: error: refusing to delete {count} tokens without --yes", file=sys.stderr)
            return 1
        answer = input(f"Delete all {count} tokens of type {store.token_type} in {store.db.database_name}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    print(f"deleted {len(store.purge())} tokens of type {store.token_type}")
    return 0


def cmd_archive(args) -> int:
    store = store_from_args(args)
    path = archive_tokens(store, Path(args.out))
    print(f"archived {store.counts()['total']} tokens of type {store.token_type} to {path}")
    return 0
