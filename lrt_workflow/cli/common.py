"""What the commands that work on tokens share: which configuration, which database, which tokens.

They read the configuration as the workflow does: ``./config.yaml`` when it
is there, with each ``--config FILE`` merged over it in order, as
``snakemake --configfile FILE`` does. The embedded server is started for a
command that needs it, and stopped afterwards unless someone else uses it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import Iterator

from lrt_workflow.config import load_configs
from lrt_workflow.couchdb import TokenStore, resolve
from lrt_workflow.couchdb.target import embedded_server
from lrt_workflow.errors import ConfigError
from lrt_workflow.pipeline import step_names, step_settings
from lrt_workflow.steps import load_pipeline

DEFAULT_CONFIG = "config.yaml"
#: One time format for every log line the package writes: steps, pilots and workers alike.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def setup_logging(prefix: str, log_file: str | None = None) -> None:
    """Log lines ``<time> <prefix>: <message>`` to stderr, and to ``log_file`` when given."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format=f"%(asctime)s {prefix}: %(message)s", datefmt=TIME_FORMAT)


def add_target_options(parser: argparse.ArgumentParser, *, token_type: bool = True) -> None:
    group = parser.add_argument_group(
        "where the tokens are",
        "Taken from these options, then PICAS_URL / PICAS_DATABASE, then ~/.picasrc, then the configuration. "
        "The password only ever comes from PICAS_PASSWORD or ~/.picasrc.",
    )
    group.add_argument("--config", action="append", default=[], metavar="FILE",
                       help=f"merged over ./{DEFAULT_CONFIG} (when it is there), in order, as snakemake "
                            "--configfile does; repeatable")
    group.add_argument("--url", help="CouchDB URL, or 'embedded' for the project's own server")
    group.add_argument("--database", help="database name")
    if token_type:
        group.add_argument("--step", help="one step of the configuration's pipeline (default: every step)")
        group.add_argument("--type", dest="token_type",
                           help="a token type, instead of the configuration's steps: every token of the type")
        group.add_argument("--obsid", help="with --type: only the tokens of this observation")


def config_from_args(args) -> dict:
    paths = ([DEFAULT_CONFIG] if Path(DEFAULT_CONFIG).exists() else []) + list(args.config)
    return load_configs(paths) if paths else {}


@contextlib.contextmanager
def database(args, config: dict) -> Iterator:
    """The database the options and configuration name, opened; the embedded server runs meanwhile."""
    server = embedded_server(config.get("couchdb"), url=args.url)
    with server.session() if server else contextlib.nullcontext():
        yield resolve(config.get("couchdb"), url=args.url, database=args.database).open()


def stores(args, config: dict, db, *, design: str | None = None) -> list[tuple[str, TokenStore]]:
    """(label, store) of the tokens a command works on: ``--type`` (with ``--obsid``), else each step
    of the configuration (or ``--step``), each scoped to its observation."""
    batch = (config.get("couchdb") or {}).get("batch_size", 500)
    if getattr(args, "token_type", None):
        label = args.token_type + (f" {args.obsid}" if args.obsid else "")
        return [(label, TokenStore(db, args.token_type, design=design, obsid=args.obsid, batch_size=batch))]
    if not (config.get("steps") or config.get("token")):
        raise ConfigError(f"no tokens named: pass --type, or run where {DEFAULT_CONFIG} is (or give --config FILE)")
    steps = load_pipeline(config).steps
    if args.step:
        steps = [step for step in steps if step.name == args.step]
        if not steps:
            raise ConfigError(f"no step {args.step!r} in the configuration")
    return [(f"{step.name} ({step.obsid})", TokenStore(db, step.token_type, design=design, obsid=step.obsid,
                                                        batch_size=batch)) for step in steps]


def settings_for(config: dict, *, step: str | None = None, token_type: str | None = None) -> dict:
    """The settings of the configuration's step named ``step``, or else the one whose tokens are of
    ``token_type``, or else its only step; ``{}`` when there is no configuration or no such step."""
    names = step_names(config) if config.get("steps") or config.get("token") else []
    if step:
        if step not in names:
            raise ConfigError(f"no step {step!r} in the configuration; it has: {', '.join(names) or 'none'}")
        return step_settings(config, step)
    every = [step_settings(config, name) for name in names]
    chosen = [s for s in every if s["token"]["type"] == token_type] if token_type else every
    return chosen[0] if len(chosen) == 1 else {}


def one_store(args, config: dict, db, *, design: str | None = None) -> TokenStore:
    """The one store a command needs; a pipeline's step must be named."""
    found = stores(args, config, db, design=design)
    if len(found) > 1:
        raise ConfigError(f"the configuration has {len(found)} steps; name one with --step "
                          f"({', '.join(label.split()[0] for label, _ in found)})")
    return found[0][1]
