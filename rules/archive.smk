# 8-9. Every token with its attachments and logs in one archive, and a picture of the run.


rule archive:
    input:
        status=rules.wait.output.status,
        tokens=rules.tokens.output[0],
    output:
        f"{OUT}/tokens_{TYPE}.tar.gz",
    params:
        lrt=LRT,
        config=CONFIG,
    log:
        f"{OUT}/logs/archive.log",
    conda:
        ENV
    shell:
        "{params.lrt} step archive --config {params.config} --tokens {input.tokens} --out {output} --log {log}"


rule report:
    input:
        status=rules.wait.output.status,
        polls=rules.wait.output.polls,
        archive=rules.archive.output[0],
    output:
        f"{OUT}/report.html",
    params:
        lrt=LRT,
        config=CONFIG,
    log:
        f"{OUT}/logs/report.log",
    conda:
        ENV
    shell:
        "{params.lrt} step report --config {params.config} --status {input.status} --polls {input.polls}"
        " --archive {input.archive} --out {output} --log {log}"
