# 3-5. The design document, one token per chunk, and the attachments every token gets.


def chunk_index(wildcards):
    """The checkpoint's own index of its chunks: never a glob, which would see stale files."""
    return f"{checkpoints.chunks.get().output[0]}/index.json"


rule design:
    input:
        rules.srmlist.output.summary,
    output:
        f"{OUT}/design.json",
    params:
        type=TYPE,
    log:
        f"{OUT}/logs/design.log",
    shell:
        "{LRT} step design --config {CONFIG} --out {output} --log {log}"


rule tokens:
    input:
        chunks=chunk_index,
        design=rules.design.output[0],
        template=config["token"]["template"],
    output:
        f"{OUT}/tokens.json",
    params:
        fields=config["token"]["fields"],
        command=config["token"]["command"],
    log:
        f"{OUT}/logs/tokens.log",
    shell:
        "{LRT} step tokens --config {CONFIG} --chunks {input.chunks} --out {output} --log {log}"


rule attachments:
    input:
        tokens=rules.tokens.output[0],
        files=config["token"]["attachments"],
    output:
        f"{OUT}/attachments.json",
    log:
        f"{OUT}/logs/attachments.log",
    shell:
        "{LRT} step attachments --config {CONFIG} --tokens {input.tokens} --out {output} --log {log}"
