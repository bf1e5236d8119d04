# Functions the rules share.


def chunk_index(wildcards):
    """The checkpoint's own index of its chunks: never a glob, which would see stale files."""
    return f"{checkpoints.chunks.get().output[0]}/index.json"
