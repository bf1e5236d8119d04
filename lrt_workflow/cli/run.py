"""``lrt run``: the workflow, rerun-safe."""

from __future__ import annotations

import argparse

from lrt_workflow.steps import run


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run the workflow (again): snakemake, recovering from a run that was killed",
        description=(
            "Run the Snakemake workflow in the current folder. Arguments go to snakemake unchanged; the "
            "workflow's default profile (profiles/default) applies whatever they are. If an earlier run was "
            "killed, its lock is cleared and its "
            "half-done jobs are redone; if another run is active here, this one refuses and says which process it is."
        ),
    )
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="arguments for snakemake")
    parser.set_defaults(func=lambda args: run.run(args.snakemake_args))
