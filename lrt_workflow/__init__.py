"""lrt_workflow: LOFAR srm lists to PiCaS tokens, run as one Snakemake workflow."""

__version__ = "0.1.0"
