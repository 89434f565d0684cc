"""DVC plots of the generated dvc.yaml: the trade-off figures as image plots and each
experiment's per-epoch training losses (mtlpareto curves) as line plots, through `dvc plots
show` and `dvc plots diff` on a tiny DVC repository."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, project_files, tiny_params
from mtlpareto import pipeline
from mtlpareto.config import load_profile
from mtlpareto.errors import MTLParetoError
from mtlpareto.metrics.curves import training_curves_csv


def _log(path: Path, losses: list[dict]) -> None:
    path.write_text("".join(json.dumps({"epoch": i + 1, "train_loss": l, "seconds": 0.1 * i}) + "\n" for i, l in enumerate(losses)))


def test_curves_csv_is_one_column_per_run_and_task(tmp_path):
    _log(tmp_path / "a.jsonl", [{"left": 2.5, "right": 2.25}, {"left": 1.5, "right": 2.0}])
    _log(tmp_path / "b.jsonl", [{"left": 3.0, "right": 1.0}])  # stopped earlier: an empty cell after
    csv = training_curves_csv({"uniform/default/seed0": tmp_path / "a.jsonl", "mgda,x/seed1": tmp_path / "b.jsonl"}, ["left", "right"])
    assert csv == (
        'epoch,uniform/default/seed0 left,uniform/default/seed0 right,"mgda,x/seed1 left","mgda,x/seed1 right"\n'
        "1,2.5,2.25,3.0,1.0\n"
        "2,1.5,2.0,,\n"
    )
    with pytest.raises(MTLParetoError, match="no training loss of task.*right"):
        _log(tmp_path / "c.jsonl", [{"left": 1.0}])
        training_curves_csv({"r": tmp_path / "c.jsonl"}, ["left", "right"])
    with pytest.raises(MTLParetoError, match="missing.*retrain"):
        training_curves_csv({"r": tmp_path / "absent.jsonl"}, ["left"])


def test_generated_plots_name_every_png_figure_and_curves_file(repo_params, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(repo_params))
    prof = load_profile(params)
    doc = yaml.safe_load(pipeline.dvc_yaml(prof))
    images = [p for p in doc["plots"] if isinstance(p, str)]
    lines = {k: v for p in doc["plots"] if isinstance(p, dict) for k, v in p.items()}
    base = Path(pipeline.dvc_yaml_path(prof)).parent
    figures = [p for p in pipeline.report_targets(prof) if p.endswith(".png")]
    assert sorted(str(base / p) for p in images) == sorted(figures)
    assert len(lines) == len(prof.experiments)
    for name in prof.experiments:
        plot = lines[f"{name}: training loss per epoch"]
        (curves, columns), = plot["y"].items()
        assert str(base / curves) == pipeline.curves_path(prof, name)
        assert plot["x"] == "epoch"
        runs = prof.runs(name)
        assert len(columns) == len(runs) * prof.n_tasks(name) == len(set(columns))
    # the curves files are stage outputs kept in git, as the tables are
    outs = {o: flags for st in doc["stages"].values() for entry in st.get("outs", []) for o, flags in entry.items()}
    for name in prof.experiments:
        assert outs[pipeline.curves_path(prof, name)] == {"cache": False, "persist": True}


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


@pytest.mark.slow
def test_dvc_plots_show_and_diff_on_a_tiny_repository(tmp_path, cli_env):
    dvc = str(Path(sys.executable).parent / "dvc")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    snakemake = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2", "paper_figures"]
    params = tiny_params(methods={"uniform": {}, "mgda_ub": {}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    project_files(tmp_path)
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run(git + ["init", "-q"], tmp_path, cli_env)
    _run([dvc, "init", "-q"], tmp_path, cli_env)
    _run([dvc, "config", "core.analytics", "false"], tmp_path, cli_env)
    _run(["mtlpareto", "dvc-yaml"], tmp_path, cli_env)
    _run(snakemake, tmp_path, cli_env)
    _run([dvc, "commit", "-f", "-q"], tmp_path, cli_env)
    _run(git + ["add", "-A"], tmp_path, cli_env)
    _run(git + ["commit", "-qm", "one epoch"], tmp_path, cli_env)

    prof = load_profile(tmp_path / "params.yaml")
    figure = pipeline.figure_paths(prof, "multimnist", "tradeoff")[0]
    curves_id = "multimnist: training loss per epoch"
    shown = json.loads(_run([dvc, "plots", "show", "--json"], tmp_path, cli_env))
    assert not shown.get("errors"), shown["errors"]
    (image,) = shown["data"][figure]
    assert image["type"] == "image" and Path(image["url"]).read_bytes() == (tmp_path / figure).read_bytes()
    (plot,) = shown["data"][curves_id]
    values = plot["content"]["data"]["values"]
    columns = pipeline.curve_columns(prof, "multimnist")
    assert {v["field"] for v in values} == set(columns)
    # the plotted values are the epoch logs' losses
    for run in prof.runs("multimnist"):
        record = json.loads((tmp_path / pipeline.train_log_path(prof, run)).read_text().splitlines()[0])
        for task, loss in record["train_loss"].items():
            (point,) = [v for v in values if v["field"] == f"{pipeline.curve_run_name(run)} {task}" and v["epoch"] == "1"]
            assert float(point["dvc_inferred_y_value"]) == loss

    # A second epoch: `dvc plots diff` draws the committed curves beside the new ones.
    params["profiles"]["tiny"]["experiments"]["multimnist"]["train"]["epochs"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    _run(snakemake, tmp_path, cli_env)
    diff = json.loads(_run([dvc, "plots", "diff", "HEAD", "--json"], tmp_path, cli_env))
    assert not diff.get("errors"), diff["errors"]
    (plot,) = diff["data"][curves_id]
    epochs = {}
    for v in plot["content"]["data"]["values"]:
        epochs.setdefault(v["rev"], set()).add(v["epoch"])
    assert epochs == {"HEAD": {"1"}, "workspace": {"1", "2"}}
    assert {img["revisions"][0] for img in diff["data"][figure]} == {"HEAD", "workspace"}
