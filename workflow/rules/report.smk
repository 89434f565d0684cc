rule table:
    """An experiment's table: CSV (machine-readable) and Markdown."""
    input:
        lambda wc: P.experiment_metrics(PROFILE, wc.experiment),
    output:
        csv="results/tables/{experiment}_{table}.csv",
        md="results/tables/{experiment}_{table}.md",
    shell:
        P.COMMANDS["table"].format(experiment="{wildcards.experiment}", table="{wildcards.table}", **CLI)


rule figure:
    """An experiment's figure as PNG and PDF."""
    input:
        lambda wc: P.experiment_metrics(PROFILE, wc.experiment),
    output:
        png="results/figures/{experiment}_{figure}.png",
        pdf="results/figures/{experiment}_{figure}.pdf",
    shell:
        P.COMMANDS["figure"].format(experiment="{wildcards.experiment}", figure="{wildcards.figure}", **CLI)
