import os
import sys

from mtlpareto import pipeline as P
from mtlpareto.config import Run, load_profile, spec_json
from mtlpareto.errors import MTLParetoError

# Rules call the `mtlpareto` script installed next to the Python running Snakemake, even
# when its virtual environment is not activated.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

# The CLI re-reads this file, so pass the same one (the first --configfile, else params.yaml).
# Snakemake makes --configfile paths absolute; relative to the working directory, the rule
# commands stay the same when the project moves (a changed command would rerun every job).
PARAMS_FILE = os.path.relpath(workflow.configfiles[0]) if workflow.configfiles else "params.yaml"

try:
    PROFILE = load_profile(PARAMS_FILE, config.get("profile"))
except MTLParetoError as exc:
    from mtlpareto.cli import naming_params_file

    sys.exit(f"mtlpareto: {naming_params_file(str(exc), PARAMS_FILE)}")

CLI = P.command_fields(PARAMS_FILE, PROFILE)
# Every declared output, not only the tables and figures: a missing checkpoint or metrics file
# is rebuilt even when the files downstream of it exist.
MAIN_TARGETS = P.declared_outputs(PROFILE, PARAMS_FILE)


def here(pattern):
    """A pipeline path pattern inside the active profile's tree (wildcards left as they are)."""
    return pattern.replace("{profile}", PROFILE.name)
THREADS = PROFILE.raw.get("torch_threads", 1)


def resources_by_experiment(kind):
    """Resources of a rule whose jobs belong to any experiment ({experiment} wildcard):
    each one a function of the wildcards, so an experiment's own `resources` apply to its jobs."""
    keys = {k for name in PROFILE.experiments for k in P.job_resources(PROFILE, kind, name)}
    return {k: (lambda wc, k=k: P.job_resources(PROFILE, kind, wc.experiment).get(k)) for k in sorted(keys)}



def in_report(path, kind, fmt):
    """`path` (a table or figure pattern) in `snakemake --report`'s HTML file: under its experiment,
    with its caption (workflow/report/<kind>.rst; paths relative to workflow/rules/)."""
    return report(
        path.replace("{ext}", fmt), caption=f"../report/{kind}.rst", category="{experiment}", subcategory=f"{kind}s",
        labels={kind: "{" + kind + "}", "format": fmt},
    )


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    experiment=r"[A-Za-z0-9_]+",
    method=r"[A-Za-z0-9_]+",
    variant=r"[A-Za-z0-9_.\-]+",
    seed=r"\d+",
    table=r"[A-Za-z0-9_]+",
    figure=r"[A-Za-z0-9_]+",


def run_of(wildcards):
    return PROFILE.run(f"{wildcards.experiment}/{wildcards.method}/{wildcards.variant}/seed{wildcards.seed}")


def run_id(wildcards):
    return run_of(wildcards).id


def dataset_of(wildcards):
    return P.processed_path(PROFILE, PROFILE.experiment(wildcards.experiment)["dataset"])


onstart:
    # Snakemake answers SIGTERM by waiting for the running jobs to finish (a training job would
    # run to its end and then be reported as failed). Pass the signal on to the jobs as well:
    # `mtlpareto train` stops at once, keeping its resume file, and the job's update() outputs
    # are put back. Installed here, after the scheduler has set its own handler.
    P.forward_sigterm_to_children()
    try:
        P.hold_dvc_lock()  # refuses to run beside `dvc repro` on the same outputs
    except MTLParetoError as exc:
        sys.exit(f"mtlpareto: {exc}")
