# 3-5. For each step: the design document of its token type, one token per chunk, and the
# attachments every token gets.

for step in STEPS:

    rule:
        name:
            f"design_{step.name}"
        input:
            f"{step.dir}/summary.json",
        output:
            f"{step.dir}/design.json",
        params:
            step=step.name,
            type=step.token_type,
        log:
            f"{step.dir}/logs/design.log",
        localrule: True
        conda:
            ENV
        shell:
            '"$LRT_PYTHON" -m lrt_workflow step design --config "$LRT_CONFIG" --pipeline-step {params.step}'
            " --out {output} --log {log}"

    rule:
        name:
            f"tokens_{step.name}"
        input:
            chunks=f"{step.dir}/chunks/index.json",
            design=f"{step.dir}/design.json",
            template=PIPELINE.step_config(step.name)["token"]["template"],
            fields=support.field_inputs(PIPELINE, step),
        output:
            f"{step.dir}/tokens.json",
        params:
            step=step.name,
            fields=support.field_options(PIPELINE, step),
            values=PIPELINE.step_config(step.name)["token"]["fields"],
            command=PIPELINE.step_config(step.name)["token"]["command"],
        log:
            f"{step.dir}/logs/tokens.log",
        localrule: True
        conda:
            ENV
        shell:
            '"$LRT_PYTHON" -m lrt_workflow step tokens --config "$LRT_CONFIG" --pipeline-step {params.step}'
            " --chunks {input.chunks} {params.fields} --out {output} --log {log}"

    rule:
        name:
            f"attachments_{step.name}"
        input:
            tokens=f"{step.dir}/tokens.json",
            files=PIPELINE.step_config(step.name)["token"]["attachments"],
        output:
            f"{step.dir}/attachments.json",
        params:
            step=step.name,
        log:
            f"{step.dir}/logs/attachments.log",
        localrule: True
        conda:
            ENV
        shell:
            '"$LRT_PYTHON" -m lrt_workflow step attachments --config "$LRT_CONFIG" --pipeline-step {params.step}'
            " --tokens {input.tokens} --out {output} --log {log}"
