# 6-7. For each step: pilots that process its tokens, and the wait until the step is complete
# (enough tokens done, their results in place), which writes the results the next step reads.
# With pilots.launcher "none", pilots started elsewhere (a cluster, the grid) do the work.

for step in STEPS:
    PILOTS = PIPELINE.step_config(step.name)["pilots"]
    PILOT_REPORTS = (
        [f"{step.dir}/pilots/{n}.json" for n in range(PILOTS["count"])]
        if PILOTS["launcher"] == "local"
        else []
    )

    rule:
        name:
            f"pilot_{step.name}"
        input:
            f"{step.dir}/attachments.json",
        output:
            f"{step.dir}/pilots/{{pilot}}.json",
        params:
            step=step.name,
            obsid=step.obsid,
        log:
            f"{step.dir}/logs/pilot-{{pilot}}.log",
        # Asked of SLURM when pilots are cluster jobs (--profile profiles/slurm); pilots.resources.
        resources:
            **support.pilot_resources(PIPELINE, step),
        conda:
            ENV
        shell:
            '"$LRT_PYTHON" -m lrt_workflow step pilot --config "$LRT_CONFIG" --pipeline-step {params.step}'
            " --obsid {params.obsid} --index {wildcards.pilot} --out {output} --log {log}"

    rule:
        name:
            f"wait_{step.name}"
        input:
            tokens=f"{step.dir}/tokens.json",
            attachments=f"{step.dir}/attachments.json",
            pilots=PILOT_REPORTS,
        output:
            status=f"{step.dir}/status.json",
            results=f"{step.dir}/results.json",
        params:
            step=step.name,
            reports=" ".join(f"--pilot-report {report}" for report in PILOT_REPORTS),
            polls=f"{step.dir}/logs/polls.jsonl",
        log:
            f"{step.dir}/logs/wait.log",
        localrule: True
        conda:
            ENV
        shell:
            '"$LRT_PYTHON" -m lrt_workflow step wait --config "$LRT_CONFIG" --pipeline-step {params.step}'
            " --tokens {input.tokens} {params.reports} --status-out {output.status}"
            " --results-out {output.results} --polls-out {params.polls} --log {log}"
