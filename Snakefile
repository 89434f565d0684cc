include: "workflow/Snakefile"


# Snakemake forgets an included file's `default_target` once the include ends, so a bare
# `snakemake` (and `snakemake --report report.html`) would request nothing: the main job is
# this file's default target.
rule default:
    """The main job, `paper_figures` (what a bare `snakemake` runs)."""
    default_target: True
    input:
        rules.paper_figures.input,
