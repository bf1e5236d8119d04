# 6-7. Pilots that process the tokens, and the wait for every token to finish.
# With pilots.launcher "none", pilots started elsewhere (a cluster, the grid) do the work.


rule pilot:
    input:
        rules.attachments.output[0],
    output:
        f"{OUT}/pilots/{{pilot}}.json",
    params:
        lrt=LRT,
        config=CONFIG,
    log:
        f"{OUT}/logs/pilot-{{pilot}}.log",
    conda:
        ENV
    shell:
        "{params.lrt} step pilot --config {params.config} --out {output} --log {log}"


rule wait:
    input:
        tokens=rules.tokens.output[0],
        attachments=rules.attachments.output[0],
        pilots=expand(f"{OUT}/pilots/{{pilot}}.json", pilot=range(config["pilots"]["count"]))
        if LOCAL_PILOTS
        else [],
    output:
        status=f"{OUT}/status.json",
        polls=f"{OUT}/polls.jsonl",
    params:
        lrt=LRT,
        config=CONFIG,
    log:
        f"{OUT}/logs/wait.log",
    conda:
        ENV
    shell:
        "{params.lrt} step wait --config {params.config} --tokens {input.tokens}"
        " --status-out {output.status} --polls-out {output.polls} --log {log}"
