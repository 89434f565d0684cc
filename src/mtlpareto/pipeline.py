"""The pipeline's files and commands, shared by the Snakefile and the generated dvc.yaml.

Snakemake rules use the path patterns and command templates below; `dvc_stages` expands the
same patterns over the run matrix, so both tools declare the same outputs (tests/test_pipeline.py
checks it) and neither DAG is written twice by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from mtlpareto.config import Profile, Run

RAW_ROOT = "data/raw"
RAW_MANIFEST = "data/raw/{dataset}.manifest.json"
PROCESSED = "data/processed/{dataset}.pt"
RUN_DIR = "{experiment}/{method}/{variant}/seed{seed}"
CHECKPOINT = "results/checkpoints/" + RUN_DIR + "/model.pt"
METRICS = "results/runs/" + RUN_DIR + "/metrics.json"
TRAIN_LOG = "results/logs/" + RUN_DIR + "/train_log.jsonl"
TABLE = "results/tables/{experiment}_{table}.{ext}"
FIGURE = "results/figures/{experiment}_{figure}.{ext}"
TABLE_EXTS = ("csv", "md")
FIGURE_EXTS = ("png", "pdf")

# Commands of the package's CLI, one per rule. {params} and {profile} select the config.
COMMANDS = {
    "fetch": "mtlpareto fetch --params {params} --profile {profile} --dataset {dataset}",
    "build_data": "mtlpareto build-data --params {params} --profile {profile} --dataset {dataset}",
    "train": "mtlpareto train --params {params} --profile {profile} --run {run}",
    # One job per experiment x method evaluates all its runs: a job's fixed cost (importing torch,
    # reading the dataset, a few seconds) is paid once instead of once per run.
    "evaluate": "mtlpareto evaluate --params {params} --profile {profile} --experiment {experiment} --method {method}",
    "table": "mtlpareto table --params {params} --profile {profile} --experiment {experiment} --table {table}",
    "figure": "mtlpareto figure --params {params} --profile {profile} --experiment {experiment} --figure {figure}",
}
CODE_DEP = "src/mtlpareto"
PUBLISHED = "results/published.yaml"  # the papers' numbers, shown beside ours in tables


def run_fields(run: Run) -> dict:
    return {"experiment": run.experiment, "method": run.method, "variant": run.variant, "seed": run.seed}


def checkpoint_path(run: Run) -> str:
    return CHECKPOINT.format(**run_fields(run))


def metrics_path(run: Run) -> str:
    return METRICS.format(**run_fields(run))


def train_log_path(run: Run) -> str:
    return TRAIN_LOG.format(**run_fields(run))


def processed_path(dataset: str) -> str:
    return PROCESSED.format(dataset=dataset)


def manifest_path(dataset: str) -> str:
    return RAW_MANIFEST.format(dataset=dataset)


def table_paths(experiment: str, table: str) -> list[str]:
    return [TABLE.format(experiment=experiment, table=table, ext=e) for e in TABLE_EXTS]


def figure_paths(experiment: str, figure: str) -> list[str]:
    return [FIGURE.format(experiment=experiment, figure=figure, ext=e) for e in FIGURE_EXTS]


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


def method_runs(profile: Profile, experiment: str) -> dict[str, list[Run]]:
    """The experiment's runs grouped by method (one evaluate job each), in params.yaml order."""
    groups: dict[str, list[Run]] = {}
    for run in profile.runs(experiment):
        groups.setdefault(run.method, []).append(run)
    return groups


def experiment_metrics(profile: Profile, experiment: str) -> list[str]:
    """Metrics files an experiment's tables and figures read: its runs, then compared ones."""
    paths = [metrics_path(r) for r in profile.runs(experiment)]
    for other in compared_experiments(profile, experiment):
        paths += [metrics_path(r) for r in profile.runs(other)]
    return paths


def report_targets(profile: Profile) -> list[str]:
    """Every table and figure of the profile: what `paper_figures` builds."""
    targets: list[str] = []
    for name, exp in profile.experiments.items():
        for table in exp.get("tables", []):
            targets += table_paths(name, table)
        for figure in exp.get("figures", []):
            targets += figure_paths(name, figure)
    return targets


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
    fmt = {"params": params_file, "profile": profile.name}
    base = f"profiles.{profile.name}"
    out: list[Stage] = []
    used = {exp["dataset"] for exp in profile.experiments.values()}
    for ds in sorted(used):
        out.append(Stage(f"fetch-{ds}", COMMANDS["fetch"].format(dataset=ds, **fmt), [f"{CODE_DEP}/data"], outs=[manifest_path(ds)], params=[f"{base}.datasets.{ds}"]))
        out.append(Stage(f"build_data-{ds}", COMMANDS["build_data"].format(dataset=ds, **fmt), [manifest_path(ds), f"{CODE_DEP}/data"], outs=[processed_path(ds)], params=[f"{base}.datasets.{ds}"]))
    for exp_name, exp in profile.experiments.items():
        exp_key = f"{base}.experiments.{exp_name}"
        for method, runs in method_runs(profile, exp_name).items():
            for run in runs:
                tag = f"{run.experiment}-{run.method}-{run.variant}-seed{run.seed}"
                run_params = [f"{exp_key}.model", f"{exp_key}.train", f"{exp_key}.methods.{run.method}", f"{base}.device"]
                out.append(Stage(f"train-{tag}", COMMANDS["train"].format(run=run.id, **fmt), [processed_path(exp["dataset"]), CODE_DEP], outs=[checkpoint_path(run)], params=run_params))
            evaluate = COMMANDS["evaluate"].format(experiment=exp_name, method=method, **fmt)
            deps = [checkpoint_path(r) for r in runs] + [processed_path(exp["dataset"]), CODE_DEP]
            out.append(Stage(f"evaluate-{exp_name}-{method}", evaluate, deps, metrics=[metrics_path(r) for r in runs]))
        metrics = experiment_metrics(profile, exp_name)
        for table in exp.get("tables", []):
            out.append(Stage(f"table-{exp_name}-{table}", COMMANDS["table"].format(experiment=exp_name, table=table, **fmt), metrics + [PUBLISHED, f"{CODE_DEP}/metrics"], outs=table_paths(exp_name, table)))
        for figure in exp.get("figures", []):
            out.append(Stage(f"figure-{exp_name}-{figure}", COMMANDS["figure"].format(experiment=exp_name, figure=figure, **fmt), metrics + [f"{CODE_DEP}/figures"], outs=figure_paths(exp_name, figure)))
    return out


def dvc_yaml(profile: Profile, params_file: str = "params.yaml") -> str:
    """dvc.yaml text for the profile: checkpoints and data cached, metrics and tables in git."""
    doc: dict = {"stages": {}}
    for st in stages(profile, params_file):
        entry: dict = {"cmd": st.cmd, "deps": st.deps}
        if st.params:
            entry["params"] = [{params_file: st.params}] if params_file != "params.yaml" else st.params
        outs = []
        for o in st.outs:
            in_git = o.startswith("results/tables/")
            outs.append({o: {"cache": False}} if in_git else o)
        if outs:
            entry["outs"] = outs
        if st.metrics:
            entry["metrics"] = [{m: {"cache": False}} for m in st.metrics]
        doc["stages"][st.name] = entry
    header = "# Generated by `mtlpareto dvc-yaml` from params.yaml and mtlpareto/pipeline.py: do not edit by hand.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=200)
