# Every output is flagged update(): Snakemake then keeps the previous version while the job
# runs (instead of deleting it first) and puts it back if the job fails or is interrupted, so a
# failure never leaves fewer results than before. The CLI writes each file atomically.
rule fetch:
    """Download (or verify manually placed / embedded) raw files; writes a checksum manifest."""
    output:
        update(here(P.RAW_MANIFEST)),
    params:
        spec=lambda wc: spec_json(PROFILE.dataset_spec(wc.dataset)),
    resources:
        **P.job_resources(PROFILE, "other"),
    shell:
        P.COMMANDS["fetch"].format(dataset="{wildcards.dataset}", **CLI)


rule build_data:
    """Build the processed multi-task dataset (deterministic for its seed)."""
    input:
        here(P.RAW_MANIFEST),
    output:
        update(here(P.PROCESSED)),
    params:
        spec=lambda wc: spec_json(PROFILE.dataset_spec(wc.dataset)),
    resources:
        **P.job_resources(PROFILE, "other"),
    shell:
        P.COMMANDS["build_data"].format(dataset="{wildcards.dataset}", **CLI)
