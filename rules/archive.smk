# 8-9. Every token of each step with its attachments and logs in one archive, and one report of
# the whole run: a section per step.

for step in STEPS:

    rule:
        name:
            f"archive_{step.name}"
        input:
            status=f"{step.dir}/status.json",
            tokens=f"{step.dir}/tokens.json",
        output:
            support.archive_file(step),
        params:
            step=step.name,
        log:
            f"{step.dir}/logs/archive.log",
        localrule: True
        conda:
            ENV
        shell:
            '"$LRT_PYTHON" -m lrt_workflow step archive --config "$LRT_CONFIG" --pipeline-step {params.step}'
            " --tokens {input.tokens} --out {output} --log {log}"


rule report:
    input:
        [f"{step.dir}/status.json" for step in STEPS],
        [support.archive_file(step) for step in STEPS],
    output:
        report(f"{PIPELINE.home}/report.html", caption="../report/caption.rst", category="Runs"),
    params:
        title=support.report_title(PIPELINE),
        sections=support.report_sections(PIPELINE),
    log:
        f"{PIPELINE.home}/logs/report.log",
    localrule: True
    conda:
        ENV
    shell:
        '"$LRT_PYTHON" -m lrt_workflow step report --config "$LRT_CONFIG" --title {params.title:q}'
        " {params.sections} --out {output} --log {log}"
