"""What the Snakefile itself needs: the pipeline at parse time, the paths the rules share, and the
start and end of a run.

At parse time the configuration and every input it names are checked, all
problems listed at once, before any job runs or anything touches CouchDB:
the schema, the files, the srm lists and the token templates. Every step of
the work is an ``lrt step`` of its own.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Iterable, Mapping

from lrt_workflow.config import validate_config
from lrt_workflow.couchdb.target import embedded_server
from lrt_workflow.errors import LrtError
from lrt_workflow.files import read_json, write_atomic
from lrt_workflow.pipeline import Pipeline, Step
from lrt_workflow.steps import load_pipeline

def load(config: dict, sources: Iterable[str] = (), *, conda: bool = False) -> Pipeline:
    """The pipeline of Snakemake's ``config``, validated with its defaults filled in (in place), and
    its inputs checked. Any problem ends Snakemake here with the problems listed, without a traceback."""
    label = " + ".join(str(source) for source in sources) or "config"
    try:
        config.update(validate_config(config, source=label))
        built = load_pipeline(config)
    except LrtError as error:
        sys.exit(f"lrt: error: {error}")
    export(built, conda=conda)
    return built


def export(built: Pipeline, *, conda: bool = False) -> None:
    """Tell the rules, through their environment, which Python runs the package and where the
    configuration snapshot is. Kept out of the rules' params: a path spelled differently (``python``
    or ``python3``) must not make finished steps run again. Under conda, each rule's own
    environment (envs/lrt_workflow.yaml) has the package."""
    os.environ["LRT_PYTHON"] = "python" if conda else sys.executable
    os.environ["LRT_CONFIG"] = snapshot_path(built)


def warn_if_unreachable(config: Mapping, workflow) -> None:
    """Warn when the jobs may run on other machines, which cannot reach the embedded server. Snakemake
    takes ``--jobs`` (as profiles/slurm sets it) only for executors that send jobs elsewhere."""
    if workflow.is_main_process and workflow.nodes is not None and embedded_server(config.get("couchdb")):
        print("lrt: warning: couchdb.url is 'embedded', but this run sends jobs elsewhere (--jobs "
              f"{workflow.nodes}): the embedded server listens on this machine's 127.0.0.1 only, so pilots on "
              "the compute nodes of a real cluster cannot reach it. That works only when the jobs run on this "
              "machine (scripts/slurm-cluster); otherwise set couchdb.url to a CouchDB server the compute nodes "
              "can reach.", file=sys.stderr)


def pilot_resources(built: Pipeline, step: Step) -> dict:
    """What each pilot of ``step`` asks of a batch system: ``pilots.resources``, with the step's own
    values over them (a step's ``pilots`` section replaces only the keys it names)."""
    return {**built.config["pilots"]["resources"], **built.step_config(step.name)["pilots"]["resources"]}


def snapshot_path(built: Pipeline) -> str:
    """Where the steps read the validated configuration: beside the one step's results, or, for a
    pipeline, in the results folder that all its observations share."""
    return f"{built.home}/config.json" if built.single else f"{built.config['results_dir']}/config.json"


def step_input(built: Pipeline, step: Step) -> str:
    """What a step reads: its observation's srm list, or an earlier step's results."""
    if step.reads_results:
        return results_file(built.step(step.input))
    return built.config["observations"][step.observation] if not built.single else built.config["srm_file"]


def results_file(step: Step) -> str:
    return f"{step.dir}/results.json"


def field_options(built: Pipeline, step: Step) -> str:
    return " ".join(shlex.quote(f"--field={name}={results_file(built.step(origin))}")
                    for name, origin in step.fields_from.items())


def field_inputs(built: Pipeline, step: Step) -> list[str]:
    return [results_file(built.step(origin)) for origin in step.fields_from.values()]


def archive_file(step: Step) -> str:
    return f"{step.dir}/tokens_{step.token_type}.tar.gz"


def report_sections(built: Pipeline) -> str:
    return " ".join(f"--section {step.name} {step.dir}/status.json {archive_file(step)}" for step in built.steps)


def report_title(built: Pipeline) -> str:
    if built.single:
        return f"{built.steps[0].token_type} run of {built.steps[0].obsid}"
    observations = ", ".join(dict.fromkeys(f"{step.observation} {step.obsid}" for step in built.steps))
    return f"Pipeline {' > '.join(step.name for step in built.steps)} of {observations}"


def write_config_snapshot(config: Mapping, path: str | os.PathLike) -> str:
    """Write the validated configuration where the steps read it; rewrite only when it changed."""
    path = Path(path)
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text)
    return str(path)


def start_embedded(config: Mapping) -> None:
    """Start the embedded server for this run unless it runs, and count the run among its users;
    `stop_embedded` stops it when no other live user (an ``lrt`` command, another run) is left."""
    server = embedded_server(config.get("couchdb"))
    if server is not None:
        state = server.acquire()
        print(f"embedded CouchDB server at {state.url} (pid {state.pid}, data in {state.data_dir})")


def stop_embedded(config: Mapping) -> None:
    server = embedded_server(config.get("couchdb"))
    if server is not None:
        server.release()


def print_summary(built: Pipeline) -> None:
    """The end of a successful run: each step's counts, and where the final products and report are."""
    for step in built.steps:
        status_file = Path(step.dir) / "status.json"
        if status_file.exists():
            counts = read_json(status_file)["counts"]
            print(f"{step.name}: " + " ".join(f"{state}={counts[state]}"
                                              for state in ("todo", "locked", "done", "error", "total")))
    last = built.steps[-1]
    results = Path(results_file(last))
    if results.exists() and (products := read_json(results)["results"]):
        print(f"final products of {last.name} ({len(products)}):")
        for item in products[:10]:
            print(f"  {item['url']}")
        if len(products) > 10:
            print(f"  ... and {len(products) - 10} more, listed in {results}")
    print(f"archives: {', '.join(archive_file(step) for step in built.steps)}")
    print(f"report:   {built.home}/report.html")
