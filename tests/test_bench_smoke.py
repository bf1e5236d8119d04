"""``benchmarks/bench.py --quick`` runs end to end, and what it reports is correct.

Only correctness is asserted here, never time: a slow CI machine must not
fail this. The benchmark starts and stops its own embedded server.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"

# Starts its own server and a few dozen worker processes: a minute or two.
pytestmark = pytest.mark.slow


def load_bench():
    """The benchmark script as a module (benchmarks/ is not an installed package)."""
    spec = importlib.util.spec_from_file_location("lrt_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One --quick run on the embedded server, shared by the tests below: (module, results, the Markdown
    written to --out)."""
    bench = load_bench()
    out = tmp_path_factory.mktemp("bench") / "bench.md"
    results = bench.main(["--quick", "--server", "embedded", "--out", str(out)])
    return bench, results, out.read_text()


def server_rows(results, section):
    (server,) = results.servers
    return results.measured[server][section]


def test_every_table_is_printed_with_all_its_rows(quick):
    bench, results, markdown = quick
    assert markdown == results.markdown
    for heading in ("## Targets", "## a. Creating tokens", "## b. Counting", "## c. Claiming", "## d. Waiting",
                    "## e. Scale", "## f. Snakemake's overhead", "## g. The picas executor's overhead per job",
                    "## Correctness checks"):
        assert heading in markdown
    n = bench.QUICK.creation_sizes[0]
    for method in ("raw:", "bare `_bulk_docs`", "**floor**:", "classic:", "lrt_workflow:", "lrt ÷ floor"):
        assert f"| {n:,} | {method}" in markdown
    counting = markdown.split("## b.")[1].split("## c.")[0]
    for size in bench.QUICK.monitor_sizes:
        assert f"| {size:,} | " in counting
    claims = markdown.split("## c.")[1].split("## d.")[0]
    for workers in bench.QUICK.worker_counts:
        for family in ("lrt worker", "picas RunActor", "lrt ÷ picas"):
            assert f"| {workers} | {family} |" in claims
    scale = markdown.split("## e.")[1].split("## f.")[0]
    for size in bench.QUICK.scale_sizes:
        assert f"| {size:,} | " in scale


def test_lrt_created_every_token(quick):
    bench, results, _ = quick
    (row,) = server_rows(results, "creation")
    assert row["tokens"] == bench.QUICK.creation_sizes[0]
    for method in ("lrt", "raw", "floor", "floor_bare"):
        assert row[f"{method}_created"] == [row["tokens"]] * bench.QUICK.repeats
    assert any("the API stores the same documents" in name and ok for name, ok in results.checks)


def test_counts_makes_exactly_one_request_and_counts_right(quick):
    bench, results, _ = quick
    rows = server_rows(results, "counting")
    assert [r["tokens"] for r in rows] == list(bench.QUICK.monitor_sizes)
    for row in rows:
        assert row["requests"] == [1] * row["calls"]
        assert row["correct"] and row["result"]["total"] == row["tokens"]


def test_our_workers_process_every_token_exactly_once_and_count_their_requests(quick):
    bench, results, _ = quick
    rows = server_rows(results, "claiming")
    ours = [r for r in rows if r["family"] == "lrt worker"]
    assert [r["workers"] for r in ours] == list(bench.QUICK.worker_counts)
    for row in ours:
        assert row["twice"] == 0 and row["missed"] == 0, row
        assert row["processed"] == row["done"] == row["tokens"], row
        assert not row["errors"], row
        assert row["requests"] > 0
    assert all(r["requests"] > 0 for r in rows if r["family"] == "picas RunActor")


def test_the_wait_and_the_scale_runs_complete_every_token(quick):
    bench, results, _ = quick
    for row in server_rows(results, "waiting"):
        assert row["code"] == 0 and row["done"] == row["tokens"] and row["polls"] >= 2
    rows = server_rows(results, "scale")
    assert [r["tokens"] for r in rows] == list(bench.QUICK.scale_sizes)
    for row in rows:
        assert (row["twice"], row["missed"], row["done"], row["wait_code"]) == (0, 0, row["tokens"], 0), row
        assert row["client_kb"] > 0 and row["wait_kb"] > 0


def test_all_correctness_checks_pass(quick):
    _, results, _ = quick
    assert results.checks and results.ok, results.checks
