"""``lrt worker``: a pilot that processes tokens until none are left."""

from __future__ import annotations


from lrt_workflow.cli.common import (
    add_target_options,
    config_from_args,
    database,
    one_store,
    settings_for,
    setup_logging,
)
from lrt_workflow.pilot import Worker
from lrt_workflow.steps.tokens import job_command


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker", help="process tokens until the todo view is empty",
        description=(
            "A pilot: claim a free token from a view, run its job in a fresh work folder with the token's "
            "_token_keys as environment variables and its attachments downloaded, record the exit code, "
            "attach stdout and stderr, and repeat until the view is empty. SIGTERM stops the job and "
            "releases the token. For tokens made the picas way use --design Monitor."
        ),
    )
    add_target_options(parser)
    parser.add_argument("--design", help="design document holding the view (default: the token type)")
    parser.add_argument("--view", default="todo", help="view to take tokens from (default: todo)")
    parser.add_argument("--command", help="job command, run with bash in the work folder "
                                          "(default: token.command of config.yaml, then Job.command of the template)")
    parser.add_argument("--max-tokens", type=int, help="stop after this many tokens")
    parser.add_argument("--max-token-seconds", type=float, help="kill a job that runs longer than this")
    parser.add_argument("--lease-seconds", type=float,
                        help="the lease: a token whose heartbeat is older than this is reset by the orchestrator "
                             "(default: pilots.lease_seconds of config.yaml, else 3600)")
    parser.add_argument("--heartbeat-seconds", type=float,
                        help="how often a running job's lease is renewed (default: a quarter of the lease); "
                             "if no heartbeat can be saved for half the lease, the job is stopped and its token released")
    parser.add_argument("--idle-seconds", type=float, default=0,
                        help="when no token is free, keep looking for this long after the last token before "
                             "ending (for tokens that come later, as Snakemake's executor makes them)")
    parser.add_argument("--poll-seconds", type=float, default=5,
                        help="how often to look for a free token while waiting (default: 5)")
    parser.add_argument("--workdir", help="folder for the per-token work folders (default: $TMPDIR/lrt-worker)")
    parser.add_argument("--keep-workdirs", action="store_true", help="keep each token's work folder afterwards")
    parser.set_defaults(func=cmd_worker)


def cmd_worker(args) -> int:
    setup_logging("lrt worker")
    config = config_from_args(args)
    if args.design and not args.token_type:
        args.token_type = args.design
    with database(args, config) as db:
        store = one_store(args, config, db, design=args.design)
        settings = settings_for(config, step=args.step, token_type=store.token_type)
        pilots = settings.get("pilots") or {}
        worker = Worker(
            store,
            args.command or job_command(settings),
            view=args.view,
            workdir=args.workdir,
            max_token_seconds=args.max_token_seconds or pilots.get("max_token_seconds"),
            lease_seconds=args.lease_seconds or pilots.get("lease_seconds", 3600),
            heartbeat_seconds=args.heartbeat_seconds,
            keep_workdirs=args.keep_workdirs,
            idle_seconds=args.idle_seconds,
            poll_seconds=args.poll_seconds,
        )
        report = worker.run(max_tokens=args.max_tokens)
    print(f"lrt worker {worker.worker_id}: {report}")
    if report.released:
        print(f"released token {report.released} on a stop signal")
        return 143
    return 0

