# 1-2. Each step's input, validated and normalised (its observation's srm list, or an earlier
# step's results in subband order), then cut into chunks of the step's size.

for step in STEPS:

    rule:
        name:
            f"srmlist_{step.name}"
        input:
            source=support.step_input(PIPELINE, step),
            template=PIPELINE.step_config(step.name)["token"]["template"],
        output:
            inputs=f"{step.dir}/inputs.json",
            srm=f"{step.dir}/srm.txt",
            summary=f"{step.dir}/summary.json",
        params:
            step=step.name,
            pattern=PIPELINE.step_config(step.name)["subband_pattern"],
        log:
            f"{step.dir}/logs/srmlist.log",
        localrule: True
        conda:
            ENV
        shell:
            '"$LRT_PYTHON" -m lrt_workflow step srmlist --config "$LRT_CONFIG" --pipeline-step {params.step}'
            " --source {input.source} --inputs-out {output.inputs} --srm-out {output.srm} --summary-out {output.summary} --log {log}"

    rule:
        name:
            f"chunks_{step.name}"
        input:
            f"{step.dir}/inputs.json",
        output:
            f"{step.dir}/chunks/index.json",
        params:
            step=step.name,
            size=PIPELINE.step_config(step.name)["chunk_size"],
        log:
            f"{step.dir}/logs/chunks.log",
        localrule: True
        conda:
            ENV
        shell:
            '"$LRT_PYTHON" -m lrt_workflow step chunks --config "$LRT_CONFIG" --pipeline-step {params.step}'
            " --inputs {input} --out {output} --log {log}"
