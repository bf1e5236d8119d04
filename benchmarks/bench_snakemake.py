"""Snakemake's overhead: the workflow under ``snakemake`` against the same ``lrt step`` commands run
directly, on a 488-token observation and on the demo's four-step chain."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from bench_common import ROOT, Bench, child_environment, fmt_s, median, run_processes, say, table

SNAKEFILE = ROOT / "Snakefile"
SRM_LINE = ("srm://srm.grid.sara.nl:8443/pnfs/grid.sara.nl/data/lofar/ops/projects/lc2_038/229507/"
            "L229507_SB{sb:03d}_uv.dppp.MS_3d78b8f1.tar")


def one_step_project(folder: Path, subbands: int, couchdb: dict, poll: float) -> None:
    """One observation of ``subbands`` subbands, one token each, job ``true``: Snakemake's own work
    and the tokens' round trips are all there is to time."""
    folder.mkdir(parents=True)
    (folder / "srm.txt").write_text("".join(SRM_LINE.format(sb=sb) + "\n" for sb in range(subbands)))
    config = {"srm_file": "srm.txt", "chunk_size": 1,
              "token": {"type": "obs", "template": str(ROOT / "example" / "one-step" / "token.json"),
                        "command": "true", "attachments": []},
              "couchdb": couchdb, "pilots": {"count": 2}, "wait": {"poll_seconds": poll}}
    (folder / "config.yaml").write_text(json.dumps(config, indent=2) + "\n")


def chain_project(folder: Path, couchdb: dict, poll: float) -> None:
    """The demo's four-step chain (cal1 > cal2 > targ1 > targ2) as config.yaml ships it."""
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "example" / "pipeline", folder / "example" / "pipeline")

    def step(observation: str, template: str, **more) -> dict:
        return {"observation": observation, "token": {"template": f"example/pipeline/{template}.json",
                                                      "attachments": [f"example/pipeline/{template}.sh"]}, **more}

    config = {
        "observations": {"calibrator": "example/pipeline/calibrator.txt", "target": "example/pipeline/target.txt"},
        "steps": {"cal1": step("calibrator", "cal1", chunk_size=1),
                  "cal2": step("calibrator", "cal2", input="cal1", chunk_size="all"),
                  "targ1": step("target", "targ1", chunk_size=1, fields_from={"CAL_SOLUTIONS": "cal2"}),
                  "targ2": step("target", "targ2", input="targ1", chunk_size=10)},
        "couchdb": couchdb, "pilots": {"count": 2}, "wait": {"poll_seconds": poll},
    }
    (folder / "config.yaml").write_text(json.dumps(config, indent=2) + "\n")


def run_snakemake(folder: Path, env: dict) -> tuple[float, list[str]]:
    """``snakemake`` in ``folder`` with the workflow's default profile; (seconds, the shell commands it ran,
    in the order it started them). The profile prints each job's command. A failed run raises."""
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE)]
    seconds, [finished] = run_processes([command], folder, folder / "snakemake", env)
    if finished.code != 0:
        raise RuntimeError(f"snakemake exited {finished.code}: "
                           + " | ".join((folder / "snakemake-0.err").read_text().strip().splitlines()[-5:]))
    output = finished.out + (folder / "snakemake-0.err").read_text()
    shell = [line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("Shell command:")]
    return seconds, [c for c in shell if c and c != "None"]


def replay(commands: list[str], folder: Path, env: dict) -> float:
    """Run Snakemake's commands ourselves, one after the other in its order, except that a step's
    pilots run side by side, as Snakemake ran them."""
    groups: list[list[str]] = []
    for command in commands:
        if " step pilot " in command:
            key = command.split("--index")[0]
            same = next((g for g in groups if " step pilot " in g[0] and g[0].split("--index")[0] == key), None)
            if same:
                same.append(command)
                continue
        groups.append([command])
    started = time.perf_counter()
    for number, group in enumerate(groups):
        _, finished = run_processes([["/bin/bash", "-c", c] for c in group], folder, folder / f"direct-{number}", env)
        if any(f.code for f in finished):
            raise RuntimeError(f"replaying {group[0][:100]}... exited {[f.code for f in finished]}")
    return time.perf_counter() - started


def overhead(bench: Bench, name: str, make, repeats: int, poll: float) -> dict:
    """Each repetition: a full Snakemake run in a fresh folder on a fresh database, a second run there
    (nothing to do), and the full run's commands replayed in another fresh folder on another fresh
    database, with the configuration snapshot Snakemake wrote pointed at it."""
    full, again, direct, jobs = [], [], [], 0
    env = child_environment(bench.server)
    for i in range(repeats):
        say(f"snakemake: {name}, run {i + 1} of {repeats}")
        dbs = [bench.fresh_database(f"smk_{name}"), bench.fresh_database(f"direct_{name}")]
        run_folder, replay_folder = bench.workdir / f"smk-{name}-{i}", bench.workdir / f"direct-{name}-{i}"
        try:
            make(run_folder, {"url": bench.url, "database": dbs[0].database_name}, poll)
            make(replay_folder, {"url": bench.url, "database": dbs[1].database_name}, poll)
            seconds, commands = run_snakemake(run_folder, env)
            full.append(seconds)
            jobs = len(commands) + 1  # and the target rule "all", which runs no command
            again.append(run_snakemake(run_folder, env)[0])
            snapshots = list((run_folder / "results").rglob("config.json"))
            for snapshot in snapshots:
                target = replay_folder / snapshot.relative_to(run_folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                data = json.loads(snapshot.read_text())
                data["couchdb"]["database"] = dbs[1].database_name
                target.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            config = snapshots[0].relative_to(run_folder)
            direct.append(replay(commands, replay_folder,
                                 {**env, "LRT_PYTHON": sys.executable, "LRT_CONFIG": str(config)}))
            say(f"snakemake: {name}: {seconds:.1f} s under Snakemake, {direct[-1]:.1f} s directly")
        finally:
            for db in dbs:
                bench.drop(db)
    return {"name": name, "repeats": repeats, "jobs": jobs, "full": median(full), "again": median(again),
            "direct": median(direct), "full_runs": full, "direct_runs": direct}


def measure_snakemake(bench: Bench, plan) -> list[dict]:
    return [
        overhead(bench, f"obs{plan.snakemake_subbands}",
                 lambda folder, couchdb, poll: one_step_project(folder, plan.snakemake_subbands, couchdb, poll),
                 plan.snakemake_repeats, plan.wait_poll),
        overhead(bench, "chain", chain_project, plan.snakemake_repeats, plan.wait_poll),
    ]


def render_snakemake(server: str, rows: list[dict], plan) -> str:
    table_rows = []
    for r in rows:
        what = (f"one observation, {plan.snakemake_subbands} tokens (chunk_size 1, job `true`)" if r["name"] != "chain"
                else "the demo's four-step chain (cal1 > cal2 > targ1 > targ2: 8 + 1 + 20 + 2 tokens)")
        table_rows.append([what, r["jobs"], " / ".join(fmt_s(s) for s in r["full_runs"]),
                           " / ".join(fmt_s(s) for s in r["direct_runs"]),
                           f"**{r['full'] / r['direct']:.2f}×**", f"{(r['full'] - r['direct']) / r['jobs'] * 1000:.0f}",
                           fmt_s(r["again"])])
    return "\n".join([
        f"## f. Snakemake's overhead (on {server})",
        "",
        "`snakemake` with the workflow's default profile (2 local pilots) in a fresh folder on a fresh database, "
        "against the same `lrt step` commands replayed directly in Snakemake's order (a step's pilots side by "
        f"side, everything else one after the other), on another fresh database. Median of {plan.snakemake_repeats}; "
        f"`wait.poll_seconds: {plan.wait_poll}`.",
        "",
        table(["workflow", "jobs", "Snakemake s (runs)", "directly s (runs)", "Snakemake ÷ directly",
               "ms per job", "Snakemake again, nothing to do, s"], table_rows),
    ])
