rule train:
    """One training job: dataset x method x preference/task x seed."""
    input:
        dataset_of,
    output:
        P.CHECKPOINT,
    log:
        P.TRAIN_LOG,
    params:
        spec=lambda wc: spec_json(PROFILE.run_spec(run_of(wc))),
        run=run_id,
    threads: THREADS
    resources:
        gpu=USES_GPU,
    shell:
        P.COMMANDS["train"].format(run="{params.run}", **CLI)


rule evaluate:
    """Per-task accuracy and loss on the validation and test splits."""
    input:
        checkpoint=P.CHECKPOINT,
        dataset=dataset_of,
    output:
        P.METRICS,
    params:
        run=run_id,
    threads: THREADS
    shell:
        P.COMMANDS["evaluate"].format(run="{params.run}", **CLI)
