#!/usr/bin/env python3
"""Benchmarks of lrt_workflow on one or more CouchDB servers, side by side: ``make bench``.

What it measures, on each server, and against what (issue 15's targets; issue 12.6):

a. creating tokens with a ~1 KB ``srm.txt``: ``TokenSet.create_dict_tokens`` against the
   server's floor (bare ``_bulk_docs`` of the same documents, attachment inline), bare
   documents without attachments, and the original tools' two PUTs per token;
b. ``counts()`` of one observation and step as the database grows: its latency next to the
   bare reduce query it makes, and how many requests one call makes;
c. claiming: concurrent ``lrt worker`` processes and, taking turns with them, the ``picas``
   client's ``RunActor``, with a ledger of every token each ran, so tokens run twice and
   tokens missed are counted, not assumed; and the requests each made per token;
d. waiting: from the last token done to ``lrt step wait`` ending;
e. scale: one step of up to 100,000 tokens created, claimed by 8 workers and counted, with
   the peak memory of the client, the workers and the wait;
f. Snakemake's overhead, on a 488-token observation and on the four-step chain, against the
   same ``lrt step`` commands run directly (on the first server only);
g. the picas executor's overhead per job next to Snakemake's local executor (``executor.py``,
   on an embedded server of its own).

Servers (``--server``, repeatable): ``embedded`` (the project's pouchdb-server, started here),
``apache`` (a throw-away Apache CouchDB 3.5 from its release tarball, as the tests start it),
an http(s) URL (credentials from PICAS_USER and PICAS_PASSWORD, never on the command line), or
``auto`` (the default): embedded, and apache when the tarball is there. Every server and
database it starts or makes is stopped or deleted, also on an error or Ctrl-C.

The results are Markdown tables on stdout (and in ``--out FILE``); progress goes to stderr.
``--quick`` runs everything at toy sizes: that is what the smoke test checks for correctness,
never for time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import importlib.metadata
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import Bench, CpuMeter, Server, choose_servers, fmt_n, median, say, table  # noqa: E402
import bench_pilots  # noqa: E402
import bench_snakemake  # noqa: E402
import bench_tokens  # noqa: E402
import executor as bench_executor  # noqa: E402

#: The full run's scale table stops here on pouchdb-server, unless --embedded-scale-max says otherwise:
#: 100,000 tokens claimed by 8 workers there alone take longer than the whole run on Apache CouchDB.
EMBEDDED_SCALE_MAX = 10_000
SECTIONS = ("creation", "counting", "claiming", "waiting", "scale", "snakemake", "executor")
#: The worker before issue 15 (commit e287cba), measured once with one worker on 500 no-op tokens
#: without attachments: view, GET, claim PUT, status PUT, result PUT per token.
BEFORE = "5.00 requests per token (view, document, claim, running status, result), plus one per attachment"


@dataclass(frozen=True)
class Plan:
    """The sizes of one run: the full one of ``make bench``, or the toy one of ``--quick``."""

    name: str
    creation_sizes: tuple[int, ...]
    repeats: int
    classic_sample: int  # classic runs on at most this many tokens; larger N is extrapolated
    monitor_sizes: tuple[int, ...]
    monitor_calls: int
    monitor_calls_large: int  # from 50,000 tokens on (pouchdb-server takes seconds per call there)
    claim_tokens: int
    worker_counts: tuple[int, ...]
    claim_rounds: int
    wait_tokens: int
    wait_repeats: int
    wait_poll: float
    scale_sizes: tuple[int, ...]
    scale_workers: int
    snakemake: bool
    snakemake_subbands: int
    snakemake_repeats: int
    embedded_scale_max: int | None = None  # the scale table's largest N on pouchdb-server (None: no limit)


FULL = Plan("full", creation_sizes=(1_000, 10_000), repeats=3, classic_sample=500,
            monitor_sizes=(1_000, 10_000, 50_000, 100_000), monitor_calls=10, monitor_calls_large=3,
            claim_tokens=2_000, worker_counts=(4, 8), claim_rounds=2, wait_tokens=1_000, wait_repeats=3, wait_poll=10,
            scale_sizes=(1_000, 10_000, 100_000), scale_workers=8, snakemake=True, snakemake_subbands=488,
            snakemake_repeats=2, embedded_scale_max=EMBEDDED_SCALE_MAX)
QUICK = Plan("quick", creation_sizes=(200,), repeats=1, classic_sample=200, monitor_sizes=(200, 1_000),
             monitor_calls=5, monitor_calls_large=2, claim_tokens=60, worker_counts=(4, 8), claim_rounds=1,
             wait_tokens=50, wait_repeats=1, wait_poll=5, scale_sizes=(50, 150), scale_workers=2, snakemake=False,
             snakemake_subbands=20, snakemake_repeats=1)


@dataclass
class Results:
    """Everything measured, as data (for the smoke test) and as Markdown (for people)."""

    plan: Plan
    environment: dict = field(default_factory=dict)
    servers: list[str] = field(default_factory=list)
    measured: dict = field(default_factory=dict)  # {server label: {section: rows}}
    snakemake: dict = field(default_factory=dict)  # {"server": label, "rows": [...]} or {"skipped": why}
    executor: str = ""  # benchmarks/executor.py's table: the picas executor next to the local executor
    targets: list[dict] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    markdown: str = ""

    @property
    def ok(self) -> bool:
        """All correctness checks passed (times are reported, never checked)."""
        return all(passed for _, passed in self.checks)


# --- measuring ----------------------------------------------------------------------------


def measure_server(bench: Bench, plan: Plan, sections: Sequence[str], results: Results) -> None:
    label = bench.server.label
    measured = results.measured.setdefault(label, {})
    if "creation" in sections:
        measured["creation"], same = bench_tokens.measure_creation(bench, plan)
        results.checks.append((f"{label}: the API stores the same documents as the raw and floor runs", same))
    if "counting" in sections:
        rows = measured["counting"] = bench_tokens.measure_counting(bench, plan)
        results.checks.append((f"{label}: counts() makes exactly 1 HTTP request per call, at every N",
                               all(set(r["requests"]) == {1} for r in rows)))
        results.checks.append((f"{label}: counts() returns the exact partition of the observation's tokens",
                               all(r["correct"] for r in rows)))
    if "claiming" in sections:
        rows = measured["claiming"] = bench_pilots.measure_claiming(bench, plan, bench.workdir / "claims")
        ours = [r for r in rows if r["family"] == "lrt worker"]
        results.checks.append((f"{label}: lrt workers: 0 tokens processed twice, 0 missed, every token done, "
                               "every worker exited 0", all(r["twice"] == 0 and r["missed"] == 0 and
                                                            r["done"] == r["tokens"] and not r["errors"]
                                                            for r in ours)))
    if "waiting" in sections:
        rows = measured["waiting"] = bench_pilots.measure_waiting(bench, plan, bench.workdir / "waits")
        results.checks.append((f"{label}: the wait ended complete, with every token done",
                               all(r["code"] == 0 and r["done"] == r["tokens"] for r in rows)))
    if "scale" in sections:
        if bench.server.kind == "embedded" and plan.embedded_scale_max:
            plan = replace(plan, scale_sizes=tuple(n for n in plan.scale_sizes if n <= plan.embedded_scale_max))
        rows = measured["scale"] = bench_pilots.measure_scale(bench, plan, bench.workdir / "scale")
        results.checks.append((f"{label}: at scale, every token done once: 0 twice, 0 missed, the wait complete",
                               all(r["twice"] == 0 and r["missed"] == 0 and r["done"] == r["tokens"] and not r["errors"]
                                   and r["wait_code"] == 0 for r in rows)))


def evaluate_targets(results: Results) -> None:
    """Issue 15's targets, each with the number that decides it, per server."""
    plan, targets = results.plan, results.targets
    for server in results.servers:
        measured = results.measured.get(server, {})
        for r in measured.get("creation", []):
            if r["tokens"] == 10_000:
                targets.append({"server": server, "target": "creation at 10,000 ≤ 1.1× the floor",
                                "measured": f"{r['lrt'] / r['floor']:.2f}× ({r['lrt']:.2f} s vs {r['floor']:.2f} s; "
                                            f"{r['lrt'] / r['floor_bare']:.2f}× the floor into an empty database, "
                                            f"{r['floor_bare']:.2f} s)",
                                "met": r["lrt"] / r["floor"] <= 1.1})
        for workers in plan.worker_counts if measured.get("claiming") else ():
            rows = measured["claiming"]
            ours, ours_requests = bench_pilots.claim_rates(rows, "lrt worker", workers)
            theirs, theirs_requests = bench_pilots.claim_rates(rows, "picas RunActor", workers)
            mine = [r for r in rows if r["family"] == "lrt worker" and r["workers"] == workers]
            targets.append({"server": server, "target": f"claiming with {workers} workers ≥ 2× the picas RunActor, "
                                                        "0 twice, 0 missed",
                            "measured": f"{ours / theirs:.2f}× ({ours:.0f} vs {theirs:.0f} tokens/s; "
                                        f"{ours_requests:.2f} vs {theirs_requests:.2f} requests per token); "
                                        f"{sum(r['twice'] for r in mine)} twice, {sum(r['missed'] for r in mine)} missed",
                            "met": ours / theirs >= 2 and not any(r["twice"] or r["missed"] for r in mine),
                            "bound": bench_pilots.claim_bound(rows, workers)})
        counting = measured.get("counting", [])
        if counting:
            most = max(max(r["requests"]) for r in counting)
            biggest = counting[-1]
            targets.append({"server": server, "target": "counts() is one request at every size",
                            "measured": f"at most {most} per call, up to {fmt_n(biggest['tokens'])} tokens",
                            "met": most == 1})
            apache = server.startswith("Apache")
            targets.append({"server": server, "target": f"counts() at {fmt_n(biggest['tokens'])}" +
                                                        (" ≤ 50 ms" if apache else ": measured and explained"),
                            "measured": f"{biggest['counts'] * 1000:.1f} ms (bare reduce {biggest['bare'] * 1000:.1f} ms)",
                            "met": biggest["counts"] <= 0.050 if apache and biggest["tokens"] >= 100_000 else None,
                            "bound": "" if apache else "the server: it keeps no reduce values in its index and reduces "
                                     "every row of the observation's range in JavaScript on each query, so the bare "
                                     "query takes as long; one request is all a client can do (section b)"})
        if measured.get("waiting"):
            latency = median([r["latency"] for r in measured["waiting"]])
            targets.append({"server": server, "target": "last token done → wait finished ≤ 1 s, polling every "
                                                        f"{plan.wait_poll:g} s", "measured": f"{latency:.2f} s",
                            "met": latency <= 1.0})
        scale = measured.get("scale", [])
        if len(scale) >= 2:
            small, big = scale[-2], scale[-1]
            factor = big["tokens"] / small["tokens"]
            worst = max(big["create"] / small["create"], big["claim"] / small["claim"])
            targets.append({"server": server, "target": f"scale to {fmt_n(big['tokens'])}: time grows linearly or "
                                                        f"better (≤ {factor * 1.2:.0f}× for {factor:.0f}× the tokens)",
                            "measured": f"create ×{big['create'] / small['create']:.1f}, claim ×"
                                        f"{big['claim'] / small['claim']:.1f}; peak RSS: client "
                                        f"{big['client_kb'] / 1024:.0f} MB, wait {big['wait_kb'] / 1024:.0f} MB, "
                                        f"worker {big['worker_kb'] / 1024:.0f} MB",
                            "met": worst <= factor * 1.2 if big["tokens"] >= 100_000 else None,
                            "bound": scale_bound(big, plan, server)})
    for row in results.snakemake.get("rows", []):
        targets.append({"server": results.snakemake["server"], "target": f"Snakemake ≤ 1.2× the same commands run "
                                                                         f"directly: {row['name']}",
                        "measured": f"{row['full'] / row['direct']:.2f}× ({row['full']:.1f} s vs {row['direct']:.1f} s)",
                        "met": row["full"] / row["direct"] <= 1.2})


def scale_bound(big: dict, plan: Plan, server: str) -> str:
    """Why the scale table stopped short of the plan's largest size, in numbers."""
    wanted = max(plan.scale_sizes)
    if big["tokens"] >= wanted:
        return ""
    rate = big["tokens"] / big["claim"]
    return (f"not run at {fmt_n(wanted)}: at {fmt_n(big['tokens'])} the {plan.scale_workers} workers claimed "
            f"{rate:.0f} tokens/s and counts() took {big['counts'] * 1000:.0f} ms ({server} reduces every query "
            f"anew, section b), so {fmt_n(wanted)} would take about {wanted / rate / 60:.0f} min to claim alone; "
            "`--embedded-scale-max 0` runs it")


# --- reporting -------------------------------------------------------------------------------


def describe_environment(argv: Sequence[str]) -> dict:
    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = re.search(r"MemTotal:\s+(\d+)", meminfo)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    node = shutil.which("node")
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": " ".join(["python", "benchmarks/bench.py", *argv]),
        "commit": subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                                 cwd=Path(__file__).parent).stdout.strip() or "unknown",
        "cpus": f"{os.cpu_count()} ({cpu.group(1).strip() if cpu else platform.processor() or 'unknown CPU'})",
        "memory": f"{int(mem_kb.group(1)) / 1024 / 1024:.1f} GiB" if mem_kb else "unknown",
        "os": platform.platform(),
        "python": platform.python_version(),
        "node": subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip() if node else "none",
        "load": "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        "packages": ", ".join(f"{p} {version(p)}" for p in ("lrt_workflow", "requests", "picas", "snakemake")),
    }


def render(results: Results, elapsed: float, error: str | None = None) -> str:
    env, plan, servers = results.environment, results.plan, results.servers
    parts = [
        f"# lrt_workflow benchmarks ({plan.name} run)",
        "",
        f"- date: {env['date']}",
        f"- command: `{env['command']}` (wall time {elapsed / 60:.0f} min), at commit `{env['commit']}`",
        f"- servers: {', '.join(servers)}",
        f"- machine: {env['cpus']} CPUs, {env['memory']} memory, {env['os']}",
        f"- software: Python {env['python']}, Node.js {env['node']}; {env['packages']}",
        f"- load average (1, 5, 15 min): {env['load']} at the start, {env.get('load_end', '?')} at the end",
    ]
    if "others" in env:
        other, share = env["others"]
        parts.append(f"- other processes on the machine used {other:.0f} CPU-seconds during the run "
                     f"({share:.0%} of its capacity){'' if share < 0.05 else ': the timings are perturbed'}")
    if error:
        parts += ["", f"**The run stopped early: {error}.** The tables below hold what was measured before."]
    done = [s for s in servers if s in results.measured]

    def have(section):
        return [s for s in done if results.measured[s].get(section)]

    if results.targets:
        parts += ["", "## Targets (issue 15), from this run", "",
                  table(["server", "target", "measured", "met", "what bounds it"],
                        [[t["server"], t["target"], t["measured"], {True: "yes", False: "**no**", None: "n/a"}[t["met"]],
                          t.get("bound", "") if not t["met"] else ""] for t in results.targets])]
    if have("creation"):
        parts += ["", bench_tokens.render_creation(have("creation"), results.measured, plan)]
    if have("counting"):
        parts += ["", bench_tokens.render_counting(have("counting"), results.measured, plan)]
    if have("claiming"):
        parts += ["", bench_pilots.render_claiming(have("claiming"), results.measured, plan),
                  "", f"Before issue 15 (commit e287cba) our worker made {BEFORE}."]
    if have("waiting"):
        parts += ["", bench_pilots.render_waiting(have("waiting"), results.measured, plan)]
    if have("scale"):
        parts += ["", bench_pilots.render_scale(have("scale"), results.measured, plan)]
    if results.snakemake.get("rows"):
        parts += ["", bench_snakemake.render_snakemake(results.snakemake["server"], results.snakemake["rows"], plan)]
    elif results.snakemake.get("skipped"):
        parts += ["", "## f. Snakemake's overhead", "", f"Not measured: {results.snakemake['skipped']}."]
    if results.executor:
        parts += ["", "## g. The picas executor's overhead per job", "", results.executor.strip()]
    if results.checks:
        parts += ["", "## Correctness checks", "",
                  table(["check", "result"], [[name, "pass" if ok else "**FAIL**"] for name, ok in results.checks])]
    return "\n".join(parts) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="toy sizes: checks that it all works")
    parser.add_argument("--server", action="append", metavar="WHICH",
                        help="embedded, apache, auto (the default: embedded, and apache when its tarball is there) "
                             "or the http(s) URL of a server; repeat for several. A URL's credentials come from "
                             "PICAS_USER and PICAS_PASSWORD")
    parser.add_argument("--only", metavar="SECTIONS", help=f"comma-separated, of: {', '.join(SECTIONS)}")
    parser.add_argument("--out", metavar="FILE", help="also write the Markdown to FILE")
    parser.add_argument("--embedded-scale-max", type=int, metavar="N",
                        help=f"the scale table's largest N on the embedded server (full run: {EMBEDDED_SCALE_MAX:,}; "
                             "0: every size)")
    args = parser.parse_args(argv)
    args.sections = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def measure_executor(quick: bool) -> str:
    """benchmarks/executor.py on an embedded server of its own (its table, not printed twice); in --quick
    mode only a line, because the suite runs ``executor.py --quick`` by itself."""
    if quick:
        return "Not measured in --quick mode: the suite runs `benchmarks/executor.py --quick` on its own."
    with contextlib.redirect_stdout(io.StringIO()):
        return bench_executor.main([])


def _interrupt(signum, frame):
    # SIGTERM takes the same path as Ctrl-C, so the finally blocks stop the servers and the workers.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> Results:
    """Run the benchmark; print (and with --out, write) the Markdown; return the results."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.embedded_scale_max is not None:
        plan = replace(plan, embedded_scale_max=args.embedded_scale_max or None)
    results = Results(plan, environment=describe_environment(argv))
    started = time.monotonic()
    error = None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    chosen: list[Server] = choose_servers(args.server or ["auto"])
    server_cpu = 0.0
    try:
        with tempfile.TemporaryDirectory(prefix="lrt-bench-") as workdir:
            meter = CpuMeter()
            try:
                for number, server in enumerate(chosen):
                    folder = Path(workdir) / f"server-{number}"
                    folder.mkdir()
                    server.start(folder)
                    results.servers.append(server.label)
                    bench = Bench(server, folder)
                    try:
                        measure_server(bench, plan, args.sections, results)
                        if number == 0 and "snakemake" in args.sections:
                            if plan.snakemake:
                                results.snakemake = {"server": server.label,
                                                     "rows": bench_snakemake.measure_snakemake(bench, plan)}
                            else:
                                results.snakemake = {"skipped": "not run in --quick mode"}
                    finally:
                        bench.close()
                        server_cpu += CpuMeter.tree_cpu(server.pid)
                        server.stop()
                if "executor" in args.sections:
                    results.executor = measure_executor(args.quick)
                evaluate_targets(results)
            except BaseException as exc:
                error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                for server in chosen:
                    server.stop()
                results.environment["others"] = meter.others(server_cpu)
                results.environment["load_end"] = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
                results.markdown = render(results, time.monotonic() - started, error)
                print(results.markdown, flush=True)
                if args.out:
                    Path(args.out).write_text(results.markdown)
    finally:
        signal.signal(signal.SIGTERM, previous)
    say(f"done in {time.monotonic() - started:.0f} s" + ("" if results.ok else "; SOME CHECKS FAILED"))
    return results


if __name__ == "__main__":
    sys.exit(0 if main().ok else 1)
