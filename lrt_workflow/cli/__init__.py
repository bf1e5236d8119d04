"""The ``lrt`` command: one subcommand per module of the package.

Each submodule adds its own subcommands through ``register(subparsers)`` and
sets ``func`` on its parsers. Errors the package raises on purpose
(`LrtError`) are printed as one line, without a traceback, with a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys

from lrt_workflow import __version__
from lrt_workflow.cli import couchdb, design, operations, run, srm, step, tokens, worker
from lrt_workflow.errors import LrtError

COMMAND_MODULES = (run, couchdb, srm, tokens, operations, design, worker, step)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrt",
        description="LOFAR srm lists to PiCaS tokens: the operations behind the lrt_workflow Snakemake workflow.",
    )
    parser.add_argument("--version", action="version", version=f"lrt_workflow {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if args.command != "run":
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.snakemake_args = unknown + args.snakemake_args  # everything after 'run' is snakemake's
    try:
        return args.func(args) or 0
    except LrtError as error:
        print(f"lrt: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("lrt: interrupted", file=sys.stderr)
        return 130
