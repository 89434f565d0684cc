rule train:
    """One training job: dataset x method x preference/task x seed."""
    input:
        dataset_of,
    # The epoch log (pipeline.TRAIN_LOG) is not declared as a log: Snakemake deletes a job's
    # logs when it starts, and a resumed run keeps the lines of the epochs it already did.
    output:
        update(here(P.CHECKPOINT)),
    params:
        spec=lambda wc: spec_json(PROFILE.run_spec(run_of(wc))),
        run=run_id,
    threads: THREADS
    resources:
        **resources_by_experiment("train"),
    shell:
        P.COMMANDS["train"].format(run="{params.run:q}", **CLI)


# One evaluate job per experiment x method (see pipeline.COMMANDS): its outputs are the
# metrics files of that method's runs, so the rules are written out per pair.
for _experiment in PROFILE.experiments:
    for _method, _runs in P.method_runs(PROFILE, _experiment).items():

        rule:
            """Per-task accuracy and loss on the validation and test splits of a method's runs."""
            name:
                f"evaluate_{_experiment}_{_method}"
            input:
                checkpoints=[P.checkpoint_path(PROFILE, r) for r in _runs],
                dataset=P.processed_path(PROFILE, PROFILE.experiment(_experiment)["dataset"]),
            output:
                [update(P.metrics_path(PROFILE, r)) for r in _runs],
            params:
                # Through params: a shell string built from the loop variables would run the
                # last iteration's command in every rule (Snakemake compiles the body once).
                experiment=_experiment,
                method=_method,
            threads: THREADS
            resources:
                **P.job_resources(PROFILE, "evaluate", _experiment),
            shell:
                P.COMMANDS["evaluate"].format(experiment="{params.experiment}", method="{params.method}", **CLI)
