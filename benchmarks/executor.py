#!/usr/bin/env python3
"""The picas executor's overhead per job, next to Snakemake's local executor: ``make bench``.

Two workflows of trivial shell jobs (``echo``), so what is measured is the machinery, not work:

* **independent** jobs: throughput, jobs per second, with 1 and with 4 local ``lrt worker`` pilots;
* a **chain** of jobs, each waiting for the one before: the latency a job adds to a path.

For each, the wall time of ``snakemake`` from start to end, and per job. With the picas executor a
job is a token: Snakemake writes it, a pilot claims it and runs it (its command starts a Snakemake
of its own in the workflow folder, as the SLURM executor's jobs do), uploads its logs and marks
it done, and Snakemake sees that at its next status round. The status round and the pilots' polls
are both ``--status``/``--poll`` seconds here (0.5 by default; Snakemake's own default is 10 s,
the pilots' 5 s).

The results are a Markdown table on stdout (and in ``--out FILE``); progress goes to stderr. The
embedded server is started on a temporary folder and always stopped, also on an error or Ctrl-C,
and so is every pilot. ``bench.py`` runs it as its section g.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lrt_workflow.couchdb import TokenStore, connect, open_database
from lrt_workflow.couchdb.credentials import PicasCredentials
from lrt_workflow.couchdb.embedded import EmbeddedServer

INDEPENDENT = """
localrules: all
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))
rule job:
    output: "out/{{i}}.txt"
    shell: "echo {{wildcards.i}} > {{output}}"
"""
CHAIN = """
localrules: all
rule all:
    input: "out/{last}.txt"
rule first:
    output: "out/0.txt"
    shell: "echo 0 > {{output}}"
rule next:
    input: lambda w: f"out/{{int(w.i) - 1}}.txt"
    output: "out/{{i}}.txt"
    wildcard_constraints: i="[1-9][0-9]*"
    shell: "cat {{input}} > {{output}}"
"""


def say(message: str) -> None:
    print(f"[executor bench] {message}", file=sys.stderr, flush=True)


def environment(home: Path) -> dict:
    """Ours without PiCaS settings, and a private HOME, so no ~/.picasrc is read."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PICAS")}, "HOME": str(home)}


class Case:
    """One Snakemake run in a fresh folder; with ``pilots``, through the picas executor."""

    def __init__(self, root: Path, name: str, snakefile: str, jobs: int, pilots: int, url: str | None,
                 seconds: float):
        self.folder = root / name
        self.folder.mkdir()
        (self.folder / "Snakefile").write_text(snakefile)
        self.name, self.jobs, self.pilots, self.url, self.seconds = name, jobs, pilots, url, seconds
        self.database = "bench_" + name.replace("-", "_")
        self.processes: list[subprocess.Popen] = []

    def run(self) -> float:
        env = environment(self.folder)
        if not self.pilots:
            command = ["--cores", "2"]
        else:
            credentials = PicasCredentials(url=self.url, database=self.database)
            open_database(connect(credentials), self.database, create=True)
            for number in range(self.pilots):
                with open(self.folder / f"pilot-{number}.log", "w") as log:
                    self.processes.append(subprocess.Popen(
                        [sys.executable, "-m", "lrt_workflow", "worker", "--type", "snakemake", "--url", self.url,
                         "--database", self.database, "--idle-seconds", "3600", "--poll-seconds", str(self.seconds),
                         "--workdir", str(self.folder / f"pilot-{number}")],
                        cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            command = ["--executor", "picas", "--jobs", str(max(self.pilots * 2, 4)), "--picas-url", self.url,
                       "--picas-database", self.database, "--picas-status-seconds", str(self.seconds)]
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "snakemake", "--quiet", "all", *command], cwd=self.folder,
                              env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: snakemake failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return wall

    def own_snakemake(self, repeats: int = 3) -> float:
        """How long one token's command takes when run by hand: the Snakemake each job starts on its pilot."""
        store = TokenStore(open_database(connect(PicasCredentials(url=self.url)), self.database), "snakemake")
        command = store.fetch(store.all_ids()[:1])[0]["command"]
        for waited_for in re.findall(r"--wait-for-files '([^']+)'", command):
            Path(waited_for).mkdir(parents=True, exist_ok=True)  # the run's folder, removed when it ended
        times = []
        for _ in range(repeats):
            started = time.monotonic()
            subprocess.run(["/bin/bash", "-c", command], cwd=self.folder, env=environment(self.folder),
                           capture_output=True, check=True, start_new_session=True)
            times.append(time.monotonic() - started)
        return statistics.median(times)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()


def measure(root: Path, url: str, args) -> list[dict]:
    plans = [("independent", INDEPENDENT.format(n=args.jobs), args.jobs, pilots) for pilots in (0, 1, 4)]
    plans += [("chain", CHAIN.format(last=args.chain - 1), args.chain, pilots) for pilots in (0, 1)]
    rows, measured = [], {}
    for shape, snakefile, jobs, pilots in plans:
        walls = []
        for repeat in range(args.repeats):
            case = Case(root, f"{shape}-{pilots}-{repeat}", snakefile, jobs, pilots, url, args.seconds)
            say(f"{shape}: {jobs} jobs, " + (f"picas executor, {pilots} pilot(s)" if pilots else "local executor"))
            try:
                walls.append(case.run())
                if pilots and shape == "independent" and "own" not in measured:
                    measured["own"] = case.own_snakemake()
            finally:
                case.stop()
        rows.append({"shape": shape, "jobs": jobs, "pilots": pilots, "wall": statistics.median(walls)})
    for row in rows:
        local = next(r for r in rows if r["shape"] == row["shape"] and r["pilots"] == 0)
        row["overhead"] = (row["wall"] - local["wall"]) / row["jobs"]
    return rows, measured.get("own")


def render(rows: list[dict], own: float | None, args) -> str:
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    lines = [
        "### The picas executor next to the local executor",
        "",
        f"Trivial shell jobs; median of {args.repeats} run(s); status rounds and pilot polls every "
        f"{args.seconds:g} s; embedded server; {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average at the end {load}.",
        "",
        "| workflow | jobs | executor | wall time | per job | overhead per job vs local |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        executor = f"picas, {row['pilots']} pilot{'s' if row['pilots'] > 1 else ''}" if row["pilots"] else "local"
        overhead = f"{row['overhead']:+.2f} s" if row["pilots"] else "-"
        lines.append(f"| {row['shape']} | {row['jobs']} | {executor} | {row['wall']:.1f} s | "
                     f"{row['wall'] / row['jobs']:.2f} s | {overhead} |")
    lines += ["", "Independent jobs measure throughput (jobs run side by side on the pilots); the chain "
                  "measures the latency one job adds to a path of dependent jobs."]
    if own is not None:
        lines += ["", f"Of that, one job's own Snakemake (a token's command run by hand, median of 3) takes "
                      f"{own:.2f} s; the rest is the token's way: written, claimed, its logs attached, "
                      "marked done, and seen at a status round."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40, help="independent jobs (default 40)")
    parser.add_argument("--chain", type=int, default=6, help="jobs in the chain (default 6)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each case; the median is shown")
    parser.add_argument("--seconds", type=float, default=0.5, help="status round and pilot poll interval")
    parser.add_argument("--quick", action="store_true", help="toy sizes: checks that it works, not for timing")
    parser.add_argument("--out", help="also write the Markdown to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.chain, args.repeats = 4, 2, 1
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with tempfile.TemporaryDirectory(prefix="lrt-executor-bench-") as workdir:
            server = EmbeddedServer(Path(workdir) / "couchdb")
            state, _ = server.start()
            try:
                rows, own = measure(Path(workdir), state.url, args)
            finally:
                server.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    markdown = render(rows, own, args)
    print(markdown, flush=True)
    if args.out:
        Path(args.out).write_text(markdown)
    return markdown


if __name__ == "__main__":
    main()
