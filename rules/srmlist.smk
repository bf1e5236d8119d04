# 1-2. The srm list, validated and normalised, then cut into chunks.


rule srmlist:
    input:
        srm=config["srm_file"],
        template=config["token"]["template"],
    output:
        srm=f"{OUT}/srm.txt",
        summary=f"{OUT}/summary.json",
    params:
        lrt=LRT,
        config=CONFIG,
        pattern=config["subband_pattern"],
    log:
        f"{OUT}/logs/srmlist.log",
    conda:
        ENV
    shell:
        "{params.lrt} step srmlist --config {params.config} --srm-out {output.srm} --summary-out {output.summary} --log {log}"


checkpoint chunks:
    input:
        rules.srmlist.output.srm,
    output:
        directory(f"{OUT}/chunks"),
    params:
        lrt=LRT,
        config=CONFIG,
        size=config["chunk_size"],
    log:
        f"{OUT}/logs/chunks.log",
    conda:
        ENV
    shell:
        "{params.lrt} step chunks --config {params.config} --srm {input} --out-dir {output} --log {log}"
