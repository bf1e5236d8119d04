"""``lrt design install|check``: the design documents of a project's token types.

Only a database's admins may write design documents. A user who is only a
member of the database can run the workflow once they are current; a
database admin makes them so with ``lrt design install``.
"""

from __future__ import annotations

from lrt_workflow.cli.common import add_target_options, config_from_args, database, stores

OUT_OF_DATE = 3


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "design", help="install or check the design documents (_design/<type>) of the token types",
        description="The design document _design/<type> holds the views every step counts and claims its "
                    "tokens by. The workflow writes it when it may; on a PiCaS server only the database's "
                    "admins may, so a member needs one of them to run 'lrt design install' first.",
    )
    actions = parser.add_subparsers(dest="design_command", required=True, metavar="ACTION")
    install = actions.add_parser("install", help="create or update the design documents of each step (or --type)",
                                 description="Create or update _design/<type> for each step of the configuration, "
                                             "or for --type. Views added by hand are kept.")
    add_target_options(install)
    install.set_defaults(func=cmd_install)
    check = actions.add_parser("check", help=f"say whether they are current; exit status {OUT_OF_DATE} when not",
                               description="Say, for each step (or --type), whether _design/<type> is current.")
    add_target_options(check)
    check.set_defaults(func=cmd_check)


def cmd_install(args) -> int:
    config = config_from_args(args)
    with database(args, config) as db:
        for label, store in stores(args, config, db):
            print(f"{label}: {store.design_id} {'written' if store.ensure_design() else 'already current'}")
    return 0


def cmd_check(args) -> int:
    config = config_from_args(args)
    stale = 0
    with database(args, config) as db:
        for label, store in stores(args, config, db):
            current, wanted = store.design_update()
            state = "current" if wanted is None else ("out of date" if current else "missing")
            stale += wanted is not None
            print(f"{label}: {store.design_id} {state}")
    return OUT_OF_DATE if stale else 0
