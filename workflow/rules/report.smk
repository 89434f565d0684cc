import re as _re

# Experiment, table and figure names may contain underscores, so "{experiment}_{figure}" is
# ambiguous (multimnist_ctrl_tradeoff_curves); the profile's own experiment names settle it.
EXPERIMENT_NAMES = "|".join(_re.escape(name) for name in sorted(PROFILE.experiments, key=len, reverse=True))


rule table:
    """An experiment's table: CSV (machine-readable) and Markdown."""
    wildcard_constraints:
        experiment=EXPERIMENT_NAMES,
    input:
        metrics=lambda wc: P.experiment_metrics(PROFILE, wc.experiment),
        published=P.PUBLISHED,
    output:
        csv=update(here(P.TABLE).replace("{ext}", "csv")),
        md=update(here(P.TABLE).replace("{ext}", "md")),
    resources:
        **P.job_resources(PROFILE, "other"),
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
        png=update(here(P.FIGURE).replace("{ext}", "png")),
        pdf=update(here(P.FIGURE).replace("{ext}", "pdf")),
    resources:
        **P.job_resources(PROFILE, "other"),
    shell:
        P.COMMANDS["figure"].format(experiment="{wildcards.experiment}", figure="{wildcards.figure}", **CLI)
