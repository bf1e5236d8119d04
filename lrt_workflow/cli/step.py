"""``lrt step NAME``: one step of the workflow, as its Snakemake rule runs it.

Each rule of ``rules/*.smk`` is one line calling one of these, so the logic
lives in `lrt_workflow.steps`, where it is tested without Snakemake.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lrt_workflow.cli.common import setup_logging
from lrt_workflow.config import load_configs
from lrt_workflow.errors import ConfigError, LrtError
from lrt_workflow.pipeline import step_names, step_settings
from lrt_workflow.steps import archive, pilots, srm, tokens
from lrt_workflow.words import counted

#: name: (what it does, [(option, what it names, required)])
STEPS = {
    "srmlist": ("validate the step's input (its srm list, or an earlier step's results) and write it as data",
                [("--source", "the srm list, or the earlier step's results.json", True),
                 ("--inputs-out", "inputs.json", True), ("--srm-out", "the inputs as a list", True),
                 ("--summary-out", "summary.json", True)]),
    "chunks": ("split the step's inputs into chunk files",
               [("--inputs", "inputs.json", True), ("--out", "index.json; the chunk files go beside it", True)]),
    "design": ("create or update _design/<type> with the standard views", [("--out", "design.json", True)]),
    "tokens": ("create one token per chunk, idempotently; give tokens that are not done a changed spec",
               [("--chunks", "index.json of the chunks step", True), ("--out", "tokens.json", True)]),
    "attachments": ("attach token.attachments to every token, in bulk",
                    [("--tokens", "tokens.json", True), ("--out", "attachments.json", True)]),
    "pilot": ("run one local pilot until none of the step's tokens is left to do",
              [("--obsid", "the observation whose tokens it runs", False), ("--out", "pilot report (JSON)", True),
               ("--workdir", "folder for the per-token work folders", False)]),
    "wait": ("wait until the step is complete; reset stale locks, retry errors, check results",
             [("--tokens", "tokens.json", True), ("--status-out", "status.json", True),
              ("--polls-out", "polls.jsonl", True), ("--results-out", "results.json", True)]),
    "archive": ("archive every token of the step with its attachments and logs",
                [("--tokens", "tokens.json", True), ("--out", "tokens_<type>.tar.gz", True)]),
    "report": ("draw the run: per step, a timeline, throughput, failures and every token",
               [("--title", "the page's title", True), ("--out", "report.html", True)]),
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
        sub.add_argument("--pipeline-step", metavar="NAME",
                         help="which step of a pipeline (default: the only one of a one-step configuration)")
        for option, what, required in files:
            sub.add_argument(option, required=required, metavar="PATH", help=what)
        if name == "tokens":
            sub.add_argument("--field", action="append", default=[], metavar="NAME=RESULTS",
                             help="fill token field NAME with the results of an earlier step (its results.json)")
        if name == "pilot":
            sub.add_argument("--index", type=int, default=0, help="this pilot's number; pilot 0 logs the progress")
        if name == "wait":
            sub.add_argument("--pilot-report", action="append", default=[], metavar="PATH",
                             help="a local pilot's report, removed when the wait fails so that a rerun runs pilots")
        if name == "report":
            sub.add_argument("--section", nargs=3, action="append", default=[], metavar=("STEP", "STATUS", "ARCHIVE"),
                             help="one step's name, status.json and archive; repeat for each step")
        sub.add_argument("--log", metavar="FILE", help="also write the step's log to FILE")
        sub.set_defaults(func=run_step)


def run_step(args) -> int:
    config = load_configs(args.config)
    names = step_names(config)
    name = args.pipeline_step or names[0]
    if args.pipeline_step is None and len(names) > 1 and args.step != "report":
        raise ConfigError(f"the configuration has {len(names)} steps ({', '.join(names)}): name one "
                          "with --pipeline-step")
    setup_logging(f"{name} {args.step}", args.log)
    try:
        return _run(args, step_settings(config, name))
    except LrtError as error:
        if args.log:  # the rule's log is where Snakemake points the user; stderr gets it from main
            with open(args.log, "a") as log:
                log.write(f"lrt: error: {error}\n")
        raise


def _run(args, settings: dict) -> int:
    if args.step == "srmlist":
        summary = srm.srmlist_step(settings, args.source, args.inputs_out, args.srm_out, args.summary_out)
        logging.info("%d inputs of %s", summary["files"], summary["obsid"])
    elif args.step == "chunks":
        index = srm.chunks_step(settings, args.inputs, Path(args.out).parent)
        logging.info("%d chunks of %s subbands", len(index), settings["chunk_size"] or "all")
    elif args.step == "design":
        info = tokens.design_step(settings, args.out)
        logging.info("%s in %s %s", info["design"], info["database"], "written" if info["written"] else "up to date")
    elif args.step == "tokens":
        fields = dict(_pair(item) for item in args.field)
        result = tokens.tokens_step(settings, args.chunks, args.out, fields)
        logging.info("%d tokens: %d created, %d found, %d given a changed spec",
                     len(result["ids"]), result["created"], result["found"], result["updated"])
    elif args.step == "attachments":
        result = tokens.attachments_step(settings, args.tokens, args.out)
        logging.info("attachments written per file: %s", result["attachments"] or "none configured")
    elif args.step == "pilot":
        result = pilots.pilot_step(settings, args.obsid, args.out, args.workdir, index=args.index)
        logging.info("processed %s, %d failed", counted(len(result["processed"]), "token"), len(result["failed"]))
    elif args.step == "wait":
        status = pilots.wait_step(settings, args.tokens, args.status_out, args.polls_out, args.results_out,
                                  pilot_reports=args.pilot_report)
        logging.info("complete: %s", " ".join(f"{k}={v}" for k, v in status["counts"].items()))
    elif args.step == "archive":
        logging.info("archived to %s", archive.archive_step(settings, args.tokens, args.out))
    elif args.step == "report":
        logging.info("report in %s", archive.report_step(args.title, args.section, args.out))
    return 0


def _pair(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not Path(path).name:
        raise ConfigError(f"--field {text!r}: expected NAME=PATH of an earlier step's results.json")
    return name, path
