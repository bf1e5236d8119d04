"""``lrt step NAME``: one step of the workflow, as its Snakemake rule runs it.

Each rule of ``rules/*.smk`` is one line calling one of these, so the logic
lives in `lrt_workflow.steps`, where it is tested without Snakemake.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from lrt_workflow.config import load_configs
from lrt_workflow.steps import archive, pilots, srm, tokens
from lrt_workflow.errors import LrtError

STEPS = {
    "srmlist": ("validate the inputs and normalise the srm list",
                [("--srm-out", "normalised srm list"), ("--summary-out", "summary.json")]),
    "chunks": ("split the srm list into chunk files",
               [("--srm", "normalised srm list"), ("--out-dir", "folder for the chunk files and index.json")]),
    "design": ("create or update _design/<type> with the standard views", [("--out", "design.json")]),
    "tokens": ("create one token per chunk, idempotently",
               [("--chunks", "index.json of the chunks step"), ("--out", "tokens.json")]),
    "attachments": ("attach token.attachments to every token, in bulk",
                    [("--tokens", "tokens.json"), ("--out", "attachments.json")]),
    "pilot": ("run one local pilot until no token is left", [("--out", "pilot report (JSON)")]),
    "wait": ("poll until every token has finished; reset stale locks and retry errors",
             [("--tokens", "tokens.json"), ("--status-out", "status.json"), ("--polls-out", "polls.jsonl")]),
    "archive": ("archive every token with its attachments and logs",
                [("--tokens", "tokens.json"), ("--out", "tokens_<type>.tar.gz")]),
    "report": ("draw the run: token states over time and run time per token",
               [("--status", "status.json"), ("--polls", "polls.jsonl"), ("--archive", "the archive"),
                ("--out", "report.html")]),
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "step", help="run one step of the workflow (what the Snakemake rules call)",
        description="Run one step of an observation's lifecycle. The Snakemake workflow calls these; "
                    "they can also be run by hand, in the same order.",
    )
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    for name, (help_text, files) in STEPS.items():
        sub = steps.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", action="append", required=True, metavar="FILE",
                         help="config.yaml; repeat to merge overlays in order, as snakemake --configfile does")
        for option, what in files:
            sub.add_argument(option, required=True, metavar="PATH", help=what)
        sub.add_argument("--log", metavar="FILE", help="also write the step's log to FILE")
        if name == "pilot":
            sub.add_argument("--workdir", help="folder for the per-token work folders")
        sub.set_defaults(func=run_step)


def run_step(args) -> int:
    handlers = [logging.StreamHandler(sys.stderr)]
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format=f"%(asctime)s {args.step}: %(message)s", datefmt="%H:%M:%S")
    try:
        return _run(args)
    except LrtError as error:
        if args.log:  # the rule's log is where Snakemake points the user; stderr gets it from main
            with open(args.log, "a") as log:
                log.write(f"lrt: error: {error}\n")
        raise


def _run(args) -> int:
    config = load_configs(args.config)
    if args.step == "srmlist":
        summary = srm.srmlist_step(config, args.srm_out, args.summary_out)
        logging.info("%s: %d files of %s at %s", config["srm_file"], summary["files"], summary["obsid"], summary["site"])
    elif args.step == "chunks":
        index = srm.chunks_step(config, args.srm, args.out_dir)
        logging.info("%d chunks of at most %d subbands", len(index), config["chunk_size"])
    elif args.step == "design":
        info = tokens.design_step(config, args.out)
        logging.info("%s in %s %s", info["design"], info["database"], "written" if info["written"] else "up to date")
    elif args.step == "tokens":
        result = tokens.tokens_step(config, args.chunks, args.out)
        logging.info("created %d tokens, found %d already there", result["created"], result["found"])
    elif args.step == "attachments":
        result = tokens.attachments_step(config, args.tokens, args.out)
        logging.info("attachments written per file: %s", result["attachments"] or "none configured")
    elif args.step == "pilot":
        result = pilots.pilot_step(config, args.out, args.workdir)
        logging.info("processed %d tokens, %d failed", len(result["processed"]), len(result["failed"]))
    elif args.step == "wait":
        status = pilots.wait_step(config, args.tokens, args.status_out, args.polls_out)
        logging.info("finished: %s", " ".join(f"{k}={v}" for k, v in status["counts"].items()))
    elif args.step == "archive":
        path = archive.archive_step(config, args.tokens, args.out)
        logging.info("archived to %s", path)
    elif args.step == "report":
        path = archive.report_step(config, args.status, args.polls, args.archive, args.out)
        logging.info("report in %s", path)
    return 0
