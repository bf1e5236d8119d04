"""``lrt srm``: check an srm list, or cut it into one file per chunk.

Both read the list with the same rules as the workflow (`read_srm_file`),
so what ``lrt srm check`` accepts is what a run will accept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lrt_workflow.errors import LrtError
from lrt_workflow.files import write_atomic
from lrt_workflow.srmlist import DEFAULT_PATTERN, ParsedList, SubbandPattern, chunk, read_srm_file, summarise
from lrt_workflow.words import counted


def register(subparsers) -> None:
    """Add ``srm check`` and ``srm chunk`` to the ``lrt`` parser's subcommands."""
    srm = subparsers.add_parser(
        "srm",
        help="check an srm list or cut it into chunks",
        description="Work on an srm list: one archive URL (srm, gsiftp, https or gfal form) per line, "
                    "all from one observation at one site.",
    )
    commands = srm.add_subparsers(dest="srm_command", required=True, metavar="SUBCOMMAND")

    check = commands.add_parser(
        "check",
        help="validate an srm list and summarise it",
        description="Validate an srm list and print its OBSID, site, file count, subband range, "
                    "missing subbands and dropped duplicates. Every problem is reported at once, "
                    "with its line number.",
    )
    _add_list_options(check)
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    check.set_defaults(func=run_check)

    cut = commands.add_parser(
        "chunk",
        help="write one file of links per chunk of subbands",
        description="Validate an srm list, then write one file per chunk of N subband slots, named "
                    "<first slot>.txt (at least 3 digits, e.g. 100.txt), one link per line. Chunks start "
                    "at the lowest subband; missing subbands leave holes, empty chunks are not written. "
                    "Nothing is written unless the whole list is valid.",
    )
    _add_list_options(cut)
    cut.add_argument("--size", type=_positive_int, required=True, metavar="N", help="subband slots per chunk")
    cut.add_argument("--out", required=True, metavar="DIR", help="folder for the chunk files (created if missing)")
    cut.set_defaults(func=run_chunk)


def _add_list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the srm list")
    group = parser.add_argument_group(
        "subband pattern",
        "How the subband number is written in each link: PREFIX, digits, SUFFIX. "
        "For links such as '..._ABN_314.tar.gz' use --pattern-prefix ABN_ --pattern-suffix '\\.'",
    )
    group.add_argument("--pattern-prefix", default=DEFAULT_PATTERN.prefix, metavar="TEXT",
                       help=f"literal text before the digits (default: {DEFAULT_PATTERN.prefix})")
    group.add_argument("--pattern-suffix", default=DEFAULT_PATTERN.suffix, metavar="REGEX",
                       help=f"regular expression for what follows the digits (default: {DEFAULT_PATTERN.suffix})")
    parser.add_argument("--no-check-site", dest="check_site", action="store_false",
                        help="accept links on unknown or mixed sites")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _read(args) -> ParsedList:
    pattern = SubbandPattern(args.pattern_prefix, args.pattern_suffix)
    return read_srm_file(args.file, pattern=pattern, check_site=args.check_site)


def run_check(args) -> int:
    summary = summarise(_read(args))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    span = summary["subbands"]
    rows = [
        ("srm list", summary["srm_file"]),
        ("OBSID", summary["obsid"]),
        ("site", summary["site"] or "unknown (site check off)"),
        ("files", summary["files"]),
        ("subbands", f"{span['first']}..{span['last']}"),
        ("missing", f"{summary['missing']} ({summary['missing_count']} subbands)" if summary["missing"] else "none"),
        ("duplicates dropped", summary["duplicates_dropped"]),
    ]
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {value}")
    for warning in summary["warnings"]:
        print(f"warning: {warning}")
    return 0


def run_chunk(args) -> int:
    # Everything is validated and planned before the folder is touched, so bad input writes nothing.
    chunks = chunk(_read(args).links, args.size)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LrtError(f"{out}: cannot create the folder: {error.strerror or error}") from None
    for piece in chunks:
        write_atomic(out / f"{piece.name}.txt", "".join(f"{link.url}\n" for link in piece.links))
    print(f"{counted(len(chunks), 'chunk')} of {args.size} subband slots written to {out}")
    return 0
