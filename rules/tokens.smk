# 3-5. The design document, one token per chunk, and the attachments every token gets.


rule design:
    input:
        rules.srmlist.output.summary,
    output:
        f"{OUT}/design.json",
    params:
        lrt=LRT,
        config=CONFIG,
        type=TYPE,
    log:
        f"{OUT}/logs/design.log",
    conda:
        ENV
    shell:
        "{params.lrt} step design --config {params.config} --out {output} --log {log}"


rule tokens:
    input:
        chunks=chunk_index,
        design=rules.design.output[0],
        template=config["token"]["template"],
    output:
        f"{OUT}/tokens.json",
    params:
        lrt=LRT,
        config=CONFIG,
        fields=config["token"]["fields"],
        command=config["token"]["command"],
    log:
        f"{OUT}/logs/tokens.log",
    conda:
        ENV
    shell:
        "{params.lrt} step tokens --config {params.config} --chunks {input.chunks} --out {output} --log {log}"


rule attachments:
    input:
        tokens=rules.tokens.output[0],
        files=config["token"]["attachments"],
    output:
        f"{OUT}/attachments.json",
    params:
        lrt=LRT,
        config=CONFIG,
    log:
        f"{OUT}/logs/attachments.log",
    conda:
        ENV
    shell:
        "{params.lrt} step attachments --config {params.config} --tokens {input.tokens} --out {output} --log {log}"
