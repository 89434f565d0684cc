# How runs become jobs is the profile's `jobs` (pipeline.stages declares the same for DVC):
#   per_run: one training job per run, one evaluation job per experiment x method;
#   per_method: one job per experiment x method trains its runs in turn, then evaluates them.

if PROFILE.jobs == "per_run":

    rule train:
        """One training job: dataset x method x preference/task x seed."""
        input:
            dataset_of,
            # A DYMU run's anchor net: its anchor experiment's single-task checkpoints.
            anchors=lambda wc: P.anchor_checkpoints(PROFILE, run_of(wc)),
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


# The per-method rules are written out per pair: their outputs are the metrics files (and, for
# per_method, the checkpoints) of that method's runs.
for _experiment in PROFILE.experiments:
    for _method, _runs in P.method_runs(PROFILE, _experiment).items():
        _dataset = P.processed_path(PROFILE, PROFILE.experiment(_experiment)["dataset"])
        _checkpoints = [P.checkpoint_path(PROFILE, r) for r in _runs]
        _metrics = [P.metrics_path(PROFILE, r) for r in _runs]

        if PROFILE.jobs == "per_method":

            rule:
                """Train every run of a method (in params.yaml order), then score them on the validation and test splits."""
                name:
                    f"train_evaluate_{_experiment}_{_method}"
                input:
                    dataset=_dataset,
                    anchors=P.anchor_checkpoints(PROFILE, *_runs),
                output:
                    [update(p) for p in _checkpoints + _metrics],
                params:
                    # Through params: a shell string built from the loop variables would run the
                    # last iteration's command in every rule (Snakemake compiles the body once).
                    experiment=_experiment,
                    method=_method,
                    specs=spec_json([PROFILE.run_spec(r) for r in _runs]),
                threads: THREADS
                priority: P.job_priority(PROFILE, _experiment, _method)
                resources:
                    **P.job_resources(PROFILE, "train", _experiment, runs=len(_runs)),
                shell:
                    P.COMMANDS["train_evaluate"].format(experiment="{params.experiment}", method="{params.method}", **CLI)

        else:

            rule:
                """Per-task accuracy and loss on the validation and test splits of a method's runs."""
                name:
                    f"evaluate_{_experiment}_{_method}"
                input:
                    checkpoints=_checkpoints,
                    dataset=_dataset,
                output:
                    [update(p) for p in _metrics],
                params:
                    experiment=_experiment,
                    method=_method,
                threads: THREADS
                resources:
                    **P.job_resources(PROFILE, "evaluate", _experiment),
                shell:
                    P.COMMANDS["evaluate"].format(experiment="{params.experiment}", method="{params.method}", **CLI)
