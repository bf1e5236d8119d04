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

# Starts its own server and a dozen worker processes: 15 s on a quiet machine, more on a busy one.
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
    """One --quick run, shared by the tests below: (module, results, the Markdown written to --out)."""
    bench = load_bench()
    out = tmp_path_factory.mktemp("bench") / "bench.md"
    results = bench.main(["--quick", "--out", str(out)])
    return bench, results, out.read_text()


def test_every_table_is_printed_with_all_its_rows(quick, capsys):
    bench, results, markdown = quick
    assert markdown == results.markdown
    for heading in ("## a. Creating tokens", "## b. Monitoring", "## c. Claiming", "## d. Snakemake overhead",
                    "## Targets", "## Correctness checks"):
        assert heading in markdown
    n = bench.QUICK.creation_sizes[0]
    for method in ("raw:", "classic:", "lrt_workflow:"):
        assert f"| {n:,} | {method}" in markdown
    assert f"| {n:,} | " in markdown.split("classic / lrt")[1]  # the ratios row
    assert len(results.batch_sweep) == len(bench.QUICK.batch_sizes) + 3
    for row in results.batch_sweep:
        assert f"| {row['what']} |" in markdown
    for size in bench.QUICK.monitor_sizes:
        assert f"| {size:,} | " in markdown.split("## b.")[1].split("## c.")[0]
    claims = markdown.split("## c.")[1].split("## d.")[0]
    for workers in bench.QUICK.worker_counts:
        assert f"| lrt worker | {workers} |" in claims
        assert f"| picas RunActor | {workers} |" in claims


def test_lrt_created_every_token(quick):
    bench, results, _ = quick
    (row,) = results.creation
    assert row["tokens"] == bench.QUICK.creation_sizes[0]
    assert row["lrt_created"] == [row["tokens"]] * bench.QUICK.repeats
    assert row["raw_created"] == [row["tokens"]] * bench.QUICK.repeats
    assert ("the API stores the same documents as the raw and classic runs", True) in results.checks


def test_counts_makes_exactly_one_request_and_counts_right(quick):
    bench, results, _ = quick
    assert [r["tokens"] for r in results.monitoring] == list(bench.QUICK.monitor_sizes)
    for row in results.monitoring:
        assert row["requests"] == [1] * bench.QUICK.monitor_calls
        assert row["correct"] and row["result"]["total"] == row["tokens"]


def test_our_workers_process_every_token_exactly_once(quick):
    bench, results, _ = quick
    ours = [r for r in results.claiming if r["family"] == "lrt worker"]
    assert [r["workers"] for r in ours] == list(bench.QUICK.worker_counts)
    for row in ours:
        assert row["twice"] == 0 and row["missed"] == 0, row
        assert row["processed"] == row["done"] == row["tokens"], row
        assert not row["errors"], row


def test_all_correctness_checks_pass(quick):
    _, results, _ = quick
    assert results.checks and results.ok, results.checks
