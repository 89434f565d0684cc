"""The pipeline: Snakemake and DVC declare the same DAG, and a tiny profile runs end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, project_files, tiny_params
from mtlpareto import pipeline
from mtlpareto.config import load_profile
from mtlpareto.errors import ConfigError


def _snakemake(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


def _planned_outputs(workdir: Path, env: dict) -> set[str]:
    res = _snakemake(workdir, env, "-n", "--forceall", "--nolock", "paper_figures")
    assert res.returncode == 0, res.stdout + res.stderr
    outs: set[str] = set()
    for line in res.stdout.splitlines():
        match = re.match(r"\s+output: (.*)", line)
        if match:
            outs.update(o.strip().removesuffix(" (update)") for o in match.group(1).split(","))
    return outs


def test_committed_dvc_yaml_is_generated_from_params():
    prof = load_profile(REPO / "params.yaml")
    assert (REPO / pipeline.dvc_yaml_path(prof)).read_text() == pipeline.dvc_yaml(prof), "run `mtlpareto dvc-yaml`"


@pytest.mark.parametrize("jobs", ["per_run", "per_method"])
def test_each_run_is_trained_and_evaluated_by_exactly_one_job(repo_params, jobs):
    repo_params["profiles"]["quick"]["jobs"] = jobs
    prof = load_profile(repo_params, "quick")
    stages = pipeline.stages(prof)
    evaluates = [st for st in stages if st.metrics]
    for exp in prof.experiments:
        for method, runs in pipeline.method_runs(prof, exp).items():
            name = f"evaluate-{exp}-{method}" if jobs == "per_run" else f"train_evaluate-{exp}-{method}"
            (stage,) = [st for st in evaluates if st.name == name]
            assert stage.metrics == [pipeline.metrics_path(prof, r) for r in runs] and {r.method for r in runs} == {method}
            assert f"--experiment {exp} --method {method}" in stage.cmd
            checkpoints = [pipeline.checkpoint_path(prof, r) for r in runs]
            if jobs == "per_run":  # trained by one job each, read by the evaluate job
                assert set(checkpoints) <= set(stage.deps)
            else:  # trained and read by this job
                assert stage.outs == checkpoints and "--evaluate" in stage.cmd
    every = [m for st in evaluates for m in st.metrics]
    assert sorted(every) == sorted(pipeline.metrics_path(prof, r) for r in prof.runs())
    trained = [o for st in stages for o in st.outs if o.endswith("model.pt")]
    assert sorted(trained) == sorted(pipeline.checkpoint_path(prof, r) for r in prof.runs())
    assert sum(st.name.startswith("train") for st in stages) == (len(prof.runs()) if jobs == "per_run" else len(evaluates))


def test_job_priority_is_the_experiments_own_and_an_anchor_starts_before_its_dependents(repo_params):
    quick = repo_params["profiles"]["quick"]["experiments"]
    for name in ("scenes", "scenes_dymu"):
        quick[name].pop("priority", None)
    prof = load_profile(repo_params, "quick")
    assert pipeline.job_priority(prof, "multimnist", "mgda") == 0  # unset
    assert pipeline.job_priority(prof, "multimnist_ctrl", "ctrl_pareto") == quick["multimnist_ctrl"]["priority"]
    # scenes' single_task runs are scenes_dymu's anchor net: one above it, the other methods not
    assert pipeline.job_priority(prof, "scenes", "single_task") == 1
    assert pipeline.job_priority(prof, "scenes", "uniform") == 0
    quick["scenes_dymu"]["priority"] = 5
    quick["scenes"]["priority"] = 7
    prof = load_profile(repo_params, "quick")
    assert pipeline.job_priority(prof, "scenes", "single_task") == 7  # its own is already higher
    quick["scenes"]["priority"] = 2
    prof = load_profile(repo_params, "quick")
    assert pipeline.job_priority(prof, "scenes", "single_task") == 6
    quick["scenes"]["priority"] = -1
    with pytest.raises(ConfigError, match="priority"):
        load_profile(repo_params, "quick")


def test_snakemake_gives_each_train_evaluate_job_its_priority(cli_env):
    res = _snakemake(REPO, cli_env, "-n", "--forceall", "--nolock", "--cores", "1", "paper_figures")
    assert res.returncode == 0, res.stdout + res.stderr
    planned: dict[str, int] = {}
    rule = None
    for line in res.stdout.splitlines():
        if match := re.match(r"(?:local)?rule (train_evaluate_\w+):", line):
            rule = match.group(1)
            planned[rule] = 0  # Snakemake prints no priority line for 0
        elif rule and (match := re.match(r"\s+priority: (\d+)", line)):
            planned[rule] = int(match.group(1))
    prof = load_profile(REPO / "params.yaml")
    expected = {f"train_evaluate_{e}_{m}": pipeline.job_priority(prof, e, m) for e in prof.experiments for m in pipeline.method_runs(prof, e)}
    assert planned == expected
    assert planned["train_evaluate_scenes_single_task"] > planned["train_evaluate_scenes_dymu_dymu"] > planned["train_evaluate_multimnist_mgda"]


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give either --run RUN or --experiment EXPERIMENT --method METHOD"),
        (["--experiment", "multimnist"], "--experiment and --method go together"),
        (["--experiment", "multimnist", "--method", "nope"], "experiment 'multimnist' has no method 'nope'"),
        (["--experiment", "nope", "--method", "mgda"], "unknown experiment 'nope'"),
    ],
)
def test_evaluate_names_what_is_missing(args, message, capsys, monkeypatch):
    from mtlpareto import cli

    monkeypatch.chdir(REPO)
    assert cli.main(["evaluate", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("jobs", ["per_run", "per_method"])
def test_snakemake_and_dvc_declare_the_same_outputs(tmp_path, cli_env, jobs):
    params = tiny_params(seeds=(0, 1), jobs=jobs)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    project_files(tmp_path)
    prof = load_profile(tmp_path / "params.yaml")
    dvc_outs = {o for st in pipeline.stages(prof) for o in st.outs + st.metrics}
    dvc_doc = yaml.safe_load(pipeline.dvc_yaml(prof))
    assert len(dvc_doc["stages"]) == len(pipeline.stages(prof))
    assert _planned_outputs(tmp_path, cli_env) == dvc_outs


def test_invalid_params_stop_snakemake_with_the_key(tmp_path, cli_env):
    params = tiny_params()
    params["profiles"]["tiny"]["experiments"]["multimnist"]["train"]["optimiser"] = "sgd"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    res = _snakemake(tmp_path, cli_env, "-n", "paper_figures")
    assert res.returncode != 0
    assert "optimiser" in res.stdout + res.stderr


@pytest.mark.slow
def test_tiny_profile_runs_end_to_end(tmp_path, cli_env):
    methods = {"single_task": {}, "uniform": {}, "linear": {}, "mgda": {"normalization": "loss+"}, "mgda_ub": {"normalization": "loss+"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(methods=methods)))
    project_files(tmp_path)
    res = _snakemake(tmp_path, cli_env, "--cores", "2", "paper_figures")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    prof = load_profile(tmp_path / "params.yaml")
    for target in pipeline.report_targets(prof):
        assert (tmp_path / target).stat().st_size > 0, target
    runs = prof.runs()
    for run in runs:
        record = json.loads((tmp_path / pipeline.metrics_path(prof, run)).read_text())
        for split in ("val", "test"):
            for task in ("left", "right"):
                assert 0.0 <= record["splits"][split][task]["accuracy"] <= 100.0
        log = (tmp_path / pipeline.train_log_path(prof, run)).read_text().splitlines()
        assert json.loads(log[-1])["epoch"] == 1
    table = (tmp_path / pipeline.table_paths(prof, "multimnist", "accuracy")[1]).read_text()
    for label in ("Single task", "Uniform scaling", "Grid search (best on val)", "MGDA", "MGDA-UB"):
        assert f"| {label} |" in table
    csv = (tmp_path / pipeline.table_paths(prof, "multimnist", "accuracy")[0]).read_text().splitlines()
    assert csv[0].startswith("method,label,variant,task,metric,split,mean,std,n_seeds")
    assert len(csv) == 1 + 5 * 2

    # Nothing left to do: a second invocation plans no job.
    res = _snakemake(tmp_path, cli_env, "-n", "paper_figures")
    assert "Nothing to be done" in res.stdout + res.stderr


def _readme_commands(fragment: str) -> list[str]:
    """`snakemake ...` commands of the README (inline or in code blocks) that contain `fragment`, as written."""
    text = (REPO / "README.md").read_text()
    found = re.findall(r"\bsnakemake (?:[^`\n#&]|\"[^\"]*\")+", text)
    return sorted({c.strip() for c in found if fragment in c})


@pytest.mark.parametrize("fragment, tree", [("--config profile=paper", "paper"), ("--forceall paper_figures", "quick")])
def test_readme_main_commands_plan_only_their_profiles_tree(fragment, tree, cli_env):
    commands = _readme_commands(fragment)
    assert commands, f"no README command with {fragment!r}"
    for command in commands:
        words = command.split()
        # as written, planned only (-n) and beside any other run (--nolock)
        res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", *words[1:]], cwd=REPO, env=cli_env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, command + "\n" + res.stdout[-2000:] + res.stderr[-2000:]
        outputs = [o.strip().removesuffix(" (update)") for line in res.stdout.splitlines() if (m := re.match(r"\s+output: (.*)", line)) for o in m.group(1).split(",")]
        assert outputs and all(f"/{tree}/" in o for o in outputs), [o for o in outputs if f"/{tree}/" not in o][:5]
