rule fetch:
    """Download (or verify manually placed / embedded) raw files; writes a checksum manifest."""
    output:
        P.RAW_MANIFEST,
    params:
        spec=lambda wc: spec_json(PROFILE.dataset_spec(wc.dataset)),
    shell:
        P.COMMANDS["fetch"].format(dataset="{wildcards.dataset}", **CLI)


rule build_data:
    """Build the processed multi-task dataset (deterministic for its seed)."""
    input:
        P.RAW_MANIFEST,
    output:
        P.PROCESSED,
    params:
        spec=lambda wc: spec_json(PROFILE.dataset_spec(wc.dataset)),
    shell:
        P.COMMANDS["build_data"].format(dataset="{wildcards.dataset}", **CLI)
