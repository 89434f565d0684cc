import re as _re

# Experiment, table and figure names may contain underscores, so "{experiment}_{figure}" is
# ambiguous (multimnist_ctrl_tradeoff_curves); the profile's own experiment names settle it.
EXPERIMENT_NAMES = "|".join(_re.escape(name) for name in sorted(PROFILE.experiments, key=len, reverse=True))


rule table:
    """An experiment's table: CSV (machine-readable), Markdown, and HTML for the report."""
    wildcard_constraints:
        experiment=EXPERIMENT_NAMES,
    input:
        metrics=lambda wc: P.experiment_metrics(PROFILE, wc.experiment),
        published=P.PUBLISHED,
    output:
        csv=update(in_report(here(P.TABLE), "table", "csv")),
        md=update(here(P.TABLE).replace("{ext}", "md")),
        html=update(in_report(here(P.TABLE), "table", "html")),
    resources:
        **resources_by_experiment("other"),
    shell:
        P.COMMANDS["table"].format(experiment="{wildcards.experiment}", table="{wildcards.table}", **CLI)


rule figure:
    """An experiment's figure as PNG and PDF."""
    wildcard_constraints:
        experiment=EXPERIMENT_NAMES,
    input:
        metrics=lambda wc: P.experiment_metrics(PROFILE, wc.experiment),
        published=P.PUBLISHED,
    output:
        png=update(in_report(here(P.FIGURE), "figure", "png")),
        pdf=update(here(P.FIGURE).replace("{ext}", "pdf")),
    resources:
        **resources_by_experiment("other"),
    shell:
        P.COMMANDS["figure"].format(experiment="{wildcards.experiment}", figure="{wildcards.figure}", **CLI)


rule curves:
    """An experiment's per-epoch training losses, one column per run and task (for `dvc plots`)."""
    wildcard_constraints:
        experiment=EXPERIMENT_NAMES,
    # The epoch logs beside the checkpoints are read; a checkpoint is written after its log's last line.
    input:
        lambda wc: [P.checkpoint_path(PROFILE, r) for r in PROFILE.runs(wc.experiment)],
    output:
        update(here(P.CURVES)),
    resources:
        **resources_by_experiment("other"),
    shell:
        P.COMMANDS["curves"].format(experiment="{wildcards.experiment}", **CLI)
