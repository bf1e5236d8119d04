"""Benchmarks of lrt_workflow against the patterns it replaces; run with ``make bench``."""
