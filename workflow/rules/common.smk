import os
import sys

from mtlpareto import pipeline as P
from mtlpareto.config import Run, load_profile, spec_json
from mtlpareto.errors import MTLParetoError

# Rules call the `mtlpareto` script installed next to the Python running Snakemake, even
# when its virtual environment is not activated.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

# The CLI re-reads this file, so pass the same one (the first --configfile, else params.yaml).
PARAMS_FILE = workflow.configfiles[0] if workflow.configfiles else "params.yaml"

try:
    PROFILE = load_profile(PARAMS_FILE, config.get("profile"))
except MTLParetoError as exc:
    sys.exit(f"mtlpareto: {exc}")

CLI = P.command_fields(PARAMS_FILE, PROFILE)
# Every declared output, not only the tables and figures: a missing checkpoint or metrics file
# is rebuilt even when the files downstream of it exist.
MAIN_TARGETS = P.declared_outputs(PROFILE, PARAMS_FILE)


def here(pattern):
    """A pipeline path pattern inside the active profile's tree (wildcards left as they are)."""
    return pattern.replace("{profile}", PROFILE.name)
USES_GPU = 1 if PROFILE.device == "cuda" else 0
THREADS = PROFILE.raw.get("torch_threads", 1)


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
