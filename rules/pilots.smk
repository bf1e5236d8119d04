# 6-7. Pilots that process the tokens, and the wait for every token to finish.
# With pilots.launcher "none", pilots started elsewhere (a cluster, the grid) do the work.


rule pilot:
    input:
        rules.attachments.output[0],
    output:
        f"{OUT}/pilots/{{pilot}}.json",
    log:
        f"{OUT}/logs/pilot-{{pilot}}.log",
    shell:
        "{LRT} step pilot --config {CONFIG} --out {output} --log {log}"


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
    log:
        f"{OUT}/logs/wait.log",
    shell:
        "{LRT} step wait --config {CONFIG} --tokens {input.tokens}"
        " --status-out {output.status} --polls-out {output.polls} --log {log}"
