"""The pipeline's files and commands, shared by the Snakefile and the generated dvc.yaml.

Snakemake rules use the path patterns and command templates below; `dvc_stages` expands the
same patterns over the run matrix, so both tools declare the same outputs (tests/test_pipeline.py
checks it) and neither DAG is written twice by hand.

Each profile has its own output tree (`results/<profile>/...`, `data/processed/<profile>/...`)
and its own dvc.yaml/dvc.lock (`results/<profile>/dvc.yaml`), so running the paper profile
never replaces the quick profile's committed results. Raw downloads (`data/raw/`) are shared:
they are verified against their checksums, whichever profile fetched them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import yaml

from mtlpareto.config import Profile, Run

RAW_ROOT = "data/raw"
RUN_DIR = "{experiment}/{method}/{variant}/seed{seed}"
PROFILE_ROOT = "results/{profile}"
RAW_MANIFEST = "data/raw/{profile}/{dataset}.manifest.json"
PROCESSED = "data/processed/{profile}/{dataset}.pt"
CHECKPOINT = PROFILE_ROOT + "/checkpoints/" + RUN_DIR + "/model.pt"
METRICS_PATTERN = PROFILE_ROOT + "/runs/" + RUN_DIR + "/metrics.json"
TRAIN_LOG = PROFILE_ROOT + "/logs/" + RUN_DIR + "/train_log.jsonl"
TABLE = PROFILE_ROOT + "/tables/{experiment}_{table}.{ext}"
FIGURE = PROFILE_ROOT + "/figures/{experiment}_{figure}.{ext}"
CURVES = PROFILE_ROOT + "/curves/{experiment}.csv"  # per-epoch training losses of every run, for `dvc plots`
DVC_YAML = PROFILE_ROOT + "/dvc.yaml"
TABLE_EXTS = ("csv", "md", "html")  # html: the Markdown rendered, for Snakemake's report
FIGURE_EXTS = ("png", "pdf")

# Commands of the package's CLI, one per rule. {params} (shell-quoted: the file name may hold
# spaces) and {profile} select the config.
COMMANDS = {
    "fetch": "mtlpareto fetch --params {params} --profile {profile} --dataset {dataset}",
    "build_data": "mtlpareto build-data --params {params} --profile {profile} --dataset {dataset}",
    "train": "mtlpareto train --params {params} --profile {profile} --run {run}",
    # One job per experiment x method evaluates all its runs: a job's fixed cost (importing torch,
    # reading the dataset, a few seconds) is paid once instead of once per run.
    "evaluate": "mtlpareto evaluate --params {params} --profile {profile} --experiment {experiment} --method {method}",
    # `jobs: per_method`: one job trains every run of an experiment x method, then evaluates them.
    "train_evaluate": "mtlpareto train --params {params} --profile {profile} --experiment {experiment} --method {method} --evaluate",
    "table": "mtlpareto table --params {params} --profile {profile} --experiment {experiment} --table {table}",
    "figure": "mtlpareto figure --params {params} --profile {profile} --experiment {experiment} --figure {figure}",
    "curves": "mtlpareto curves --params {params} --profile {profile} --experiment {experiment}",
}
CODE_DEP = "src/mtlpareto"
PUBLISHED = "results/published.yaml"  # the papers' numbers, shown beside ours in tables


def _name(profile: Profile | str) -> str:
    return profile if isinstance(profile, str) else profile.name


def command_fields(params_file: str, profile: Profile | str) -> dict:
    """{params} and {profile} of COMMANDS, quoted for the shell."""
    return {"params": shlex.quote(str(params_file)), "profile": shlex.quote(_name(profile))}


def run_fields(run: Run) -> dict:
    return {"experiment": run.experiment, "method": run.method, "variant": run.variant, "seed": run.seed}


def profile_root(profile: Profile | str) -> str:
    return PROFILE_ROOT.format(profile=_name(profile))


def checkpoint_path(profile: Profile | str, run: Run) -> str:
    return CHECKPOINT.format(profile=_name(profile), **run_fields(run))


def metrics_path(profile: Profile | str, run: Run) -> str:
    return METRICS_PATTERN.format(profile=_name(profile), **run_fields(run))


def train_log_path(profile: Profile | str, run: Run) -> str:
    return TRAIN_LOG.format(profile=_name(profile), **run_fields(run))


def anchor_checkpoints(profile: Profile, *runs: Run) -> list[str]:
    """Checkpoints of the runs these runs are built on (DYMU's anchor net, `Profile.anchor_runs`),
    each once; [] for most."""
    return list(dict.fromkeys(checkpoint_path(profile, a) for run in runs for a in profile.anchor_runs(run)))


def processed_path(profile: Profile | str, dataset: str) -> str:
    return PROCESSED.format(profile=_name(profile), dataset=dataset)


def manifest_path(profile: Profile | str, dataset: str) -> str:
    return RAW_MANIFEST.format(profile=_name(profile), dataset=dataset)


def table_paths(profile: Profile | str, experiment: str, table: str) -> list[str]:
    return [TABLE.format(profile=_name(profile), experiment=experiment, table=table, ext=e) for e in TABLE_EXTS]


def figure_paths(profile: Profile | str, experiment: str, figure: str) -> list[str]:
    return [FIGURE.format(profile=_name(profile), experiment=experiment, figure=figure, ext=e) for e in FIGURE_EXTS]


def curves_path(profile: Profile | str, experiment: str) -> str:
    return CURVES.format(profile=_name(profile), experiment=experiment)


def curve_run_name(run: Run) -> str:
    """A run's name inside its experiment's curves file."""
    return f"{run.method}/{run.variant}/seed{run.seed}"


def curve_columns(profile: Profile, experiment: str) -> list[str]:
    """The loss columns of an experiment's curves file: one per run and task, in run order."""
    from mtlpareto.data import task_names
    from mtlpareto.metrics.curves import curve_column

    tasks = task_names(profile.dataset_spec(profile.experiment(experiment)["dataset"]))
    return [curve_column(curve_run_name(run), task) for run in profile.runs(experiment) for task in tasks]


def dvc_plots(profile: Profile) -> list:
    """Top-level `plots` of dvc.yaml: every PNG figure, and each experiment's training curves.

    `dvc plots show` renders them into one HTML page; `dvc plots diff <rev>` draws a revision's
    curves over the workspace's (the curves files are in git, the figures in the DVC cache).
    """
    import posixpath

    # DVC reads top-level plot paths relative to the dvc.yaml, which lives in the profile's tree.
    def rel(path: str) -> str:
        return posixpath.relpath(path, posixpath.dirname(dvc_yaml_path(profile)))

    plots: list = []
    for name, exp in profile.experiments.items():
        plots += [rel(p) for figure in exp.get("figures", []) for p in figure_paths(profile, name, figure) if p.endswith(".png")]
        plots.append({
            f"{name}: training loss per epoch": {
                "template": "linear",
                "x": "epoch",
                "y": {rel(curves_path(profile, name)): curve_columns(profile, name)},
                "title": f"{name} ({_name(profile)} profile): mean training loss per epoch, one line per run and task",
                "x_label": "epoch",
                "y_label": "training loss",
            }
        })
    return plots


def dvc_yaml_path(profile: Profile | str) -> str:
    return DVC_YAML.format(profile=_name(profile))


def compared_experiments(profile: Profile, experiment: str) -> list[str]:
    """The experiments named by `compare_with` (their runs appear in this one's tables/figures)."""
    from mtlpareto.errors import ConfigError

    other = profile.experiment(experiment).get("compare_with") or []
    names = [other] if isinstance(other, str) else list(other)
    for name in names:
        if name == experiment or name not in profile.experiments:
            raise ConfigError(
                f"profiles.{profile.name}.experiments.{experiment}.compare_with: {name!r} is not another "
                f"experiment of the profile (defined: {', '.join(profile.experiments)})"
            )
    return names


def job_priority(profile: Profile, experiment: str, method: str) -> int:
    """Snakemake priority of an experiment x method's train/evaluate jobs: the experiment's
    `priority` (0 if unset), or, for runs whose checkpoints another experiment builds on (the
    single_task runs of DYMU's anchor net), one above that experiment's, so the chain of the
    two starts first and the last cores do not wait on it."""
    own = int(profile.experiment(experiment).get("priority", 0))
    if method != "single_task":
        return own
    dependents = [
        name
        for name, exp in profile.experiments.items()
        if name != experiment and any((options or {}).get("anchor") == experiment for options in exp["methods"].values())
    ]
    # A dependent's own anchor runs are single_task runs, never the anchoring method: no recursion.
    return max([own, *(int(profile.experiment(d).get("priority", 0)) + 1 for d in dependents)])


def method_runs(profile: Profile, experiment: str) -> dict[str, list[Run]]:
    """The experiment's runs grouped by method (one evaluate job each), in params.yaml order."""
    groups: dict[str, list[Run]] = {}
    for run in profile.runs(experiment):
        groups.setdefault(run.method, []).append(run)
    return groups


def experiment_metrics(profile: Profile, experiment: str) -> list[str]:
    """Metrics files an experiment's tables and figures read: its runs, then compared ones."""
    paths = [metrics_path(profile, r) for r in profile.runs(experiment)]
    for other in compared_experiments(profile, experiment):
        paths += [metrics_path(profile, r) for r in profile.runs(other)]
    return paths


def report_targets(profile: Profile) -> list[str]:
    """Every table and figure of the profile."""
    targets: list[str] = []
    for name, exp in profile.experiments.items():
        for table in exp.get("tables", []):
            targets += table_paths(profile, name, table)
        for figure in exp.get("figures", []):
            targets += figure_paths(profile, name, figure)
    return targets


def declared_outputs(profile: Profile, params_file: str = "params.yaml") -> list[str]:
    """Every output of every stage: what the main command (`paper_figures`) requests.

    Requesting only the tables and figures would let a deleted checkpoint or metrics file stay
    missing ("Nothing to be done") whenever the files downstream of it exist.
    """
    return [o for st in stages(profile, params_file) for o in st.outs + st.metrics]


JOB_KINDS = ("train", "evaluate", "other")  # keys of params.yaml's `resources`; other: fetch, build_data, table, figure, curves


def job_resources(profile: Profile, kind: str, experiment: str | None = None, runs: int = 1) -> dict[str, int]:
    """What one job of `kind` asks a cluster scheduler for, as Snakemake resources.

    `runtime` (minutes) and `mem_mb` come from the profile's `resources` in params.yaml, an
    experiment's own entry overriding them for its jobs (fetch and build_data jobs belong to a
    dataset, not an experiment: `experiment` None); undeclared ones are left to the Snakemake
    profile's default-resources. Train and evaluate jobs run on the
    profile's device, so on cuda each asks for one GPU (`gpu`, Snakemake's SLURM executor
    turns it into --gpus) with `torch_threads` CPUs beside it. A job that trains `runs` runs in
    turn (`jobs: per_method`) asks for their runtimes together. Local runs ignore all of it.
    """
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(JOB_KINDS)}")
    resources = dict((profile.raw.get("resources") or {}).get(kind) or {})
    if experiment is not None:
        resources.update((profile.experiment(experiment).get("resources") or {}).get(kind) or {})
    if "runtime" in resources:
        resources["runtime"] *= runs
    if kind != "other":
        resources["gpu"] = 1 if profile.device == "cuda" else 0
        if resources["gpu"]:
            resources["cpus_per_gpu"] = profile.raw.get("torch_threads", 1)
    return resources


@dataclass
class Stage:
    name: str
    cmd: str
    deps: list[str]
    outs: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)


def stages(profile: Profile, params_file: str = "params.yaml") -> list[Stage]:
    """Every job of the pipeline, in dependency order."""
    fmt = command_fields(params_file, profile)
    base = f"profiles.{profile.name}"
    out: list[Stage] = []
    used = {exp["dataset"] for exp in profile.experiments.values()}
    for ds in sorted(used):
        manifest, processed = manifest_path(profile, ds), processed_path(profile, ds)
        out.append(Stage(f"fetch-{ds}", COMMANDS["fetch"].format(dataset=ds, **fmt), [f"{CODE_DEP}/data"], outs=[manifest], params=[f"{base}.datasets.{ds}"]))
        out.append(Stage(f"build_data-{ds}", COMMANDS["build_data"].format(dataset=ds, **fmt), [manifest, f"{CODE_DEP}/data"], outs=[processed], params=[f"{base}.datasets.{ds}"]))
    for exp_name, exp in profile.experiments.items():
        exp_key = f"{base}.experiments.{exp_name}"
        processed = processed_path(profile, exp["dataset"])
        for method, runs in method_runs(profile, exp_name).items():
            run_params = [f"{exp_key}.model", f"{exp_key}.train", f"{exp_key}.methods.{method}", f"{base}.device"]
            checkpoints = [checkpoint_path(profile, r) for r in runs]
            metrics = [metrics_path(profile, r) for r in runs]
            if profile.jobs == "per_method":
                cmd = COMMANDS["train_evaluate"].format(experiment=exp_name, method=method, **fmt)
                out.append(Stage(f"train_evaluate-{exp_name}-{method}", cmd, [processed] + anchor_checkpoints(profile, *runs) + [CODE_DEP], outs=checkpoints, metrics=metrics, params=run_params))
                continue
            for run, checkpoint in zip(runs, checkpoints):
                tag = f"{run.experiment}-{run.method}-{run.variant}-seed{run.seed}"
                # A DYMU run also reads its anchor's single-task checkpoints.
                deps = [processed] + anchor_checkpoints(profile, run) + [CODE_DEP]
                out.append(Stage(f"train-{tag}", COMMANDS["train"].format(run=shlex.quote(run.id), **fmt), deps, outs=[checkpoint], params=run_params))
            evaluate = COMMANDS["evaluate"].format(experiment=exp_name, method=method, **fmt)
            out.append(Stage(f"evaluate-{exp_name}-{method}", evaluate, checkpoints + [processed, CODE_DEP], metrics=metrics))
        # The epoch logs sit beside the checkpoints (not versioned); a run's checkpoint is
        # written after its last epoch's line.
        trained = [checkpoint_path(profile, r) for r in profile.runs(exp_name)]
        out.append(Stage(f"curves-{exp_name}", COMMANDS["curves"].format(experiment=exp_name, **fmt), trained + [f"{CODE_DEP}/metrics"], outs=[curves_path(profile, exp_name)]))
        read = experiment_metrics(profile, exp_name)
        for table in exp.get("tables", []):
            out.append(Stage(f"table-{exp_name}-{table}", COMMANDS["table"].format(experiment=exp_name, table=table, **fmt), read + [PUBLISHED, f"{CODE_DEP}/metrics"], outs=table_paths(profile, exp_name, table)))
        for figure in exp.get("figures", []):
            # Figures draw the papers' points (PUBLISHED) and may load the runs' models (dense predictions).
            out.append(Stage(f"figure-{exp_name}-{figure}", COMMANDS["figure"].format(experiment=exp_name, figure=figure, **fmt), read + [PUBLISHED, CODE_DEP], outs=figure_paths(profile, exp_name, figure)))
    return out


def dvc_yaml(profile: Profile, params_file: str = "params.yaml") -> str:
    """Text of the profile's dvc.yaml (`dvc_yaml_path`): checkpoints and data cached, metrics and tables in git.

    The file lives in the profile's tree; every stage runs from the repository root (`wdir`),
    so its paths are the same as Snakemake's. Every output is `persist`: DVC would otherwise
    delete a stage's old outputs before running it, and a failed run would leave fewer results
    than before (the CLI writes each file atomically, so a kept file is always a complete one).
    """
    wdir = "/".join(".." for _ in dvc_yaml_path(profile).split("/")[:-1])
    doc: dict = {"stages": {}}
    for st in stages(profile, params_file):
        entry: dict = {"cmd": st.cmd, "wdir": wdir, "deps": st.deps}
        if st.params:
            entry["params"] = [{params_file: st.params}] if params_file != "params.yaml" else st.params
        outs = []
        for o in st.outs:
            in_git = "/tables/" in o or "/curves/" in o
            outs.append({o: {"cache": False, "persist": True}} if in_git else {o: {"persist": True}})
        if outs:
            entry["outs"] = outs
        if st.metrics:
            entry["metrics"] = [{m: {"cache": False, "persist": True}} for m in st.metrics]
        doc["stages"][st.name] = entry
    doc["plots"] = dvc_plots(profile)
    header = "# Generated by `mtlpareto dvc-yaml` from params.yaml and mtlpareto/pipeline.py: do not edit by hand.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=200)


def _descendants(pid: int) -> list[int]:
    """Process ids below `pid` (Linux /proc), children first."""
    import os

    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    # the command name (field 2) is in parentheses and may hold spaces
                    parent_of[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parent_of.items() if parent in frontier]
        found += children
        frontier = children
    return found


def forward_sigterm_to_children() -> None:
    """On SIGTERM, also send SIGTERM to every process this one started, then run the previous handler.

    For Snakemake's `onstart`: its own handler only stops scheduling new jobs.
    """
    import os
    import signal

    previous = signal.getsignal(signal.SIGTERM)

    def forward(signum, frame):
        for child in _descendants(os.getpid()):
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, forward)


DVC_LOCK = ".dvc/tmp/lock"  # the lock every repository-changing DVC command holds (dvc repro, commit, checkout)
_held_locks: list = []


def hold_dvc_lock() -> None:
    """Take DVC's repository lock for the rest of this process (Snakemake's `onstart`).

    Snakemake and `dvc repro` would otherwise run the same jobs on the same outputs at once
    (two trainers on one resume file). Whichever starts second is refused: Snakemake here, with
    the message below; DVC with its "Unable to acquire lock" error. No-op outside a DVC repository.
    """
    import os

    import zc.lockfile

    if not os.path.isdir(".dvc"):
        return
    os.makedirs(os.path.dirname(DVC_LOCK), exist_ok=True)
    try:
        _held_locks.append(zc.lockfile.LockFile(DVC_LOCK, content_template="{pid} (snakemake)"))
    except zc.lockfile.LockError:
        from mtlpareto.errors import MTLParetoError

        raise MTLParetoError(
            f"a DVC command (dvc repro, commit, pull, ...) is running in this repository ({DVC_LOCK} is locked); "
            "Snakemake would run the same jobs on the same outputs. Wait for it to finish, then rerun."
        ) from None
