"""``lrt status|reset|purge|archive|restore|logs``: what people do by hand between runs.

In a project folder they work on the configuration's steps, each on its own
observation's tokens (``--step`` picks one); ``--type`` (with ``--obsid``)
works on any token type instead.
"""

from __future__ import annotations

import datetime
import sys
import time
from pathlib import Path

from lrt_workflow.archive import archive_tokens, read_archive, restore
from lrt_workflow.cli.common import TIME_FORMAT, add_target_options, config_from_args, database, stores
from lrt_workflow.couchdb.documents import design_ids
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.errors import LrtError
from lrt_workflow.steps import load_pipeline
from lrt_workflow.token.views import OVERVIEW, STATES

LOGS = ("stdout.log", "stderr.log")


def register(subparsers) -> None:
    status = subparsers.add_parser(
        "status", help="token counts per state: of each step, or of every token type in the database",
        description="Print how many tokens are todo, locked, done and in error: of each step of the configuration "
                    "(its own observation's tokens), of --type, or, without a configuration, of every token type "
                    "in the database.",
    )
    add_target_options(status)
    status.add_argument("--watch", type=float, metavar="SECONDS",
                        help="print again every SECONDS, with the time, until interrupted")
    status.set_defaults(func=cmd_status)

    reset = subparsers.add_parser(
        "reset", help="put tokens back in todo",
        description="Reset (scrub) tokens: lock, done, output and hostname are cleared, scrub_count grows by one, "
                    "and the tokens are handed out again. Then run the workflow again ('lrt run'): the pilots of "
                    "a step that is not complete start again and process them.",
    )
    add_target_options(reset)
    which = reset.add_mutually_exclusive_group(required=True)
    which.add_argument("--view", choices=("error", "locked", "done", "todo"), help="reset every token of this view")
    which.add_argument("--stale", type=float, metavar="SECONDS",
                       help="reset locked tokens whose worker has not sent a heartbeat (or, before the first one, "
                            "claimed it) for SECONDS")
    reset.add_argument("--max-scrub", type=int, metavar="N",
                       help="with --stale: a token reset N times already goes to error instead "
                            "(default: wait.max_scrub of the configuration, else no limit)")
    reset.add_argument("--drop-logs", action="store_true", help="also remove the logs a worker attached")
    reset.set_defaults(func=cmd_reset)

    purge = subparsers.add_parser(
        "purge", help="delete tokens: of each step, or of --type",
        description="Delete the tokens (the design document stays, so a new run can use it). "
                    "Archive them first: 'lrt archive'.",
    )
    add_target_options(purge)
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=cmd_purge)

    archive = subparsers.add_parser(
        "archive", help="write tokens and their attachments to tokens_<type>.tar.gz",
        description="Archive the tokens, with their attachments and logs, into one .tar.gz per step (or type) "
                    "with a manifest and checksums. 'lrt restore' puts them back.",
    )
    add_target_options(archive)
    archive.add_argument("--out-dir", metavar="DIR",
                         help="folder for the archives (default: each step's results folder; with --type, .)")
    archive.set_defaults(func=cmd_archive)

    restore_ = subparsers.add_parser(
        "restore", help="put archived tokens back into the database",
        description="Create the tokens of an archive (lrt archive, or the workflow's tokens_<type>.tar.gz), "
                    "with their attachments. Tokens that exist are left as they are.",
    )
    restore_.add_argument("archive", metavar="ARCHIVE", help="a tokens_<type>.tar.gz")
    add_target_options(restore_, token_type=False)
    restore_.set_defaults(func=cmd_restore)

    logs = subparsers.add_parser(
        "logs", help="show a token's stdout and stderr",
        description="Print the logs a pilot attached to a token, from the database or, once the tokens are "
                    "purged, from the copies the workflow keeps in <results>/.../logs/tokens/.",
    )
    logs.add_argument("token_id", metavar="TOKEN_ID")
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines of each")
    which_log = logs.add_mutually_exclusive_group()
    which_log.add_argument("--stdout", dest="which", action="store_const", const=("stdout.log",), help="only stdout")
    which_log.add_argument("--stderr", dest="which", action="store_const", const=("stderr.log",), help="only stderr")
    add_target_options(logs, token_type=False)
    logs.set_defaults(func=cmd_logs, which=LOGS)


def format_counts(label: str, counts: dict) -> str:
    return f"{label}: " + " ".join(f"{state}={counts[state]}" for state in (*STATES, "total"))


def cmd_status(args) -> int:
    config = config_from_args(args)
    with database(args, config) as db:
        while True:
            if args.token_type or config.get("steps") or config.get("token"):
                lines = [format_counts(label, store.counts()) for label, store in stores(args, config, db)]
            else:
                found = [TokenStore(db, d.split("/", 1)[1]) for d in design_ids(db)]
                lines = [format_counts(s.token_type, s.counts()) for s in found if OVERVIEW in s.view_names()]
            if args.watch:
                print(datetime.datetime.now().strftime(TIME_FORMAT))
            print("\n".join(lines) if lines else f"no token types in database {db.database_name}")
            if not args.watch:
                return 0
            sys.stdout.flush()
            time.sleep(args.watch)
            print()


def cmd_reset(args) -> int:
    config = config_from_args(args)
    with database(args, config) as db:
        for label, store in stores(args, config, db):
            if args.stale is not None:
                max_scrub = args.max_scrub if args.max_scrub is not None else (config.get("wait") or {}).get("max_scrub")
                ids = store.reset_stale(args.stale, max_scrub=max_scrub, drop_logs=args.drop_logs)
                print(f"{label}: reset {len(ids)} tokens silent for more than {args.stale:g} s (stale locks)")
            else:
                ids = store.reset_view(args.view, drop_logs=args.drop_logs)
                print(f"{label}: reset {len(ids)} tokens of view {args.view}")
            for token_id in ids:
                print(f"  {token_id}")
    return 0


def cmd_purge(args) -> int:
    config = config_from_args(args)
    with database(args, config) as db:
        chosen = stores(args, config, db)
        count = sum(store.counts()["total"] for _, store in chosen)
        if count and not args.yes:
            if not sys.stdin.isatty():
                raise LrtError(f"refusing to delete {count} tokens without --yes")
            what = ", ".join(label for label, _ in chosen)
            if input(f"Delete all {count} tokens of {what} in {db.database_name}? [y/N] ").strip().lower() not in (
                    "y", "yes"):
                print("nothing deleted")
                return 1
        for label, store in chosen:
            print(f"{label}: deleted {len(store.purge())} tokens")
    return 0


def cmd_archive(args) -> int:
    config = config_from_args(args)
    with database(args, config) as db:
        folders = {}
        if not args.token_type and not args.out_dir:
            folders = {step.token_type: Path(step.dir) for step in load_pipeline(config).steps}
        for label, store in stores(args, config, db):
            name = f"tokens_{store.token_type}" + (f"_{store.obsid}" if args.token_type and store.obsid else "")
            folder = Path(args.out_dir or ".") if not folders else folders[store.token_type]
            path = archive_tokens(store, folder, name=f"{name}.tar.gz")
            print(f"{label}: archived {store.counts()['total']} tokens to {path}")
    return 0


def cmd_restore(args) -> int:
    config = config_from_args(args)
    manifest, _ = read_archive(args.archive)
    with database(args, config) as db:
        report = restore(TokenStore(db, manifest["token_type"]), args.archive)
    print(f"{manifest['token_type']}: {report}")
    return 0


def cmd_logs(args) -> int:
    config = config_from_args(args)
    found, unreachable = {}, None
    try:
        with database(args, config) as db:
            store = TokenStore(db, "token")  # a token is found by its id, whatever its type
            doc = store.get(args.token_id)
            for name in args.which:
                if doc and name in (doc.get("_attachments") or {}):
                    found[name] = store.get_attachment(args.token_id, name)
    except LrtError as error:  # the database is gone or away: the copies next to the results may do
        unreachable = error
    results = Path((config or {}).get("results_dir", "results"))
    for name in args.which:
        if name not in found:
            copies = sorted(results.glob(f"**/logs/tokens/{args.token_id}.{name}"))
            if copies:
                found[name] = copies[-1].read_bytes()
    if not found:
        where = f"the database ({unreachable})" if unreachable else "the database"
        raise LrtError(f"no logs of token {args.token_id}: not in {where}, nor under {results}/**/logs/tokens/")
    for name in args.which:
        if name in found:
            lines = found[name].decode(errors="replace").splitlines()
            print(f"==> {args.token_id} {name} <==")
            print("\n".join(lines[-args.tail:] if args.tail else lines))
    return 0
