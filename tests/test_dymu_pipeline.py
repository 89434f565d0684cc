"""A DYMU experiment through the CLI, as its pipeline jobs run it: anchor single-task runs, the
DYMU run that reads their checkpoints, its evaluation over (r, c), predict, the figures."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml

from mtlpareto import cli, pipeline
from mtlpareto.config import load_profile
from mtlpareto.errors import ConfigError, MTLParetoError
from mtlpareto.models.dymu import Tree

FIGURES = ("dymu_controllability", "dymu_cost", "dymu_trees")


def dymu_params(anchor: str = "scenes") -> dict:
    model = {"name": "segnet", "width": 0.125}
    train = {"epochs": 1, "batch_size": 8, "optimizer": "adam", "lr": 0.001}
    return {
        "profile": "t",
        "profiles": {"t": {
            "device": "cpu", "seeds": [0],
            "datasets": {"rooms": {"kind": "scenes", "variant": "indoor", "n_train": 24, "n_test": 8, "val_size": 8, "image_size": [32, 64]}},
            "experiments": {
                "scenes": {"dataset": "rooms", "model": model, "train": train, "methods": {"single_task": {}}},
                "scenes_dymu": {
                    "dataset": "rooms", "model": model, "train": {**train, "epochs": 2},
                    "methods": {"dymu": {"anchor": anchor, "edge_epochs": 1, "block_stages": [5, 5], "affinity_images": 8,
                                         "tau_start": 2.0, "tau_every": 1, "eval_points": 2, "eval_preferences": 3,
                                         "cost_preferences": 50, "eval_budgets": [0.0, 1.0]}},
                    "tables": ["dymu"], "figures": list(FIGURES),
                },
            },
        }},
    }


def test_dymu_experiment_end_to_end_through_the_cli(tmp_path, monkeypatch, capsys):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(dymu_params()))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fetch", "--dataset", "rooms"]) == 0
    assert cli.main(["build-data", "--dataset", "rooms"]) == 0
    prof = load_profile("params.yaml")
    run = prof.run("scenes_dymu/dymu/default/seed0")
    anchors = pipeline.anchor_checkpoints(prof, run)
    assert anchors == [pipeline.checkpoint_path(prof, prof.run(f"scenes/single_task/task-{t}/seed0")) for t in ("semantic", "depth", "normal")]
    stage = next(s for s in pipeline.stages(prof) if s.name == "train-scenes_dymu-dymu-default-seed0")
    assert set(anchors) <= set(stage.deps)  # DVC reruns the DYMU run when an anchor changes
    assert cli.main(["train", "--run", run.id, "--no-progress"]) != 0  # no anchor yet: a clear error
    assert "anchor checkpoint" in capsys.readouterr().err
    for r in prof.runs("scenes"):
        assert cli.main(["train", "--run", r.id, "--no-progress"]) == 0
    assert cli.main(["train", "--run", run.id, "--no-progress"]) == 0
    checkpoint = tmp_path / pipeline.checkpoint_path(prof, run)
    first = torch.load(checkpoint, weights_only=False)
    # deterministic: retraining from scratch gives the same hypernetworks
    checkpoint.unlink()
    assert cli.main(["train", "--run", run.id, "--no-progress"]) == 0
    second = torch.load(checkpoint, weights_only=False)
    for part in ("edge", "weight"):
        assert all(torch.equal(first[part][k], second[part][k]) for k in first[part])
    # killed after epoch 1 (the edge stage), resumed into the weight stage: the same hypernetworks
    from mtlpareto.training import run_state

    real_save = run_state.atomic_torch_save

    def save_then_die(obj, path):
        real_save(obj, path)
        raise KeyboardInterrupt

    checkpoint.unlink()
    monkeypatch.setattr(run_state, "atomic_torch_save", save_then_die)
    try:
        assert cli.main(["train", "--run", run.id, "--no-progress"]) != 0
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(run_state, "atomic_torch_save", real_save)
    assert (checkpoint.parent / "resume.pt").exists() and not checkpoint.exists()
    capsys.readouterr()
    assert cli.main(["train", "--run", run.id, "--no-progress"]) == 0
    assert "resuming after epoch 1" in "".join(capsys.readouterr())
    resumed = torch.load(checkpoint, weights_only=False)
    for part in ("edge", "weight"):
        assert all(torch.equal(first[part][k], resumed[part][k]) for k in first[part])
    # the anchor inside the DYMU checkpoint is the single-task networks, unchanged
    semantic = torch.load(tmp_path / anchors[0], weights_only=False)["model"]
    assert torch.equal(second["anchor"]["streams.0.0.stages.0.first.0.weight"], semantic["encoder.encoder_stages.0.0.0.weight"])

    assert cli.main(["evaluate", "--experiment", "scenes_dymu", "--method", "dymu"]) == 0
    record = json.loads((tmp_path / pipeline.metrics_path(prof, run)).read_text())
    block = record["dymu"]
    assert set(record["splits"]) == {"val", "test"} and set(record["splits"]["test"]) == {"semantic", "depth", "normal"}
    assert len(block["curve"]) == 2 * 3 * 2  # budgets x tasks x points
    assert set(block["summary"]) == {"0.0", "1.0"}
    for summary in block["summary"].values():
        # the paper's summary: 3 uniform draws from the simplex scored, 50 costed
        assert summary["preferences"] == 3 and summary["cost_preferences"] == 50 and len(summary["points"]) == 3
        assert all(sum(p["preference"]) == pytest.approx(1.0) for p in summary["points"])
        assert block["shared_cost"]["parameters"] <= summary["parameters"] <= block["anchor_cost"]["parameters"]
    assert block["summary"]["0.0"]["points"][0]["preference"] == block["summary"]["1.0"]["points"][0]["preference"]  # the same draws per c
    assert block["control_parameters"] == sum(v.numel() for k, v in first["edge"].items()) + sum(v.numel() for v in first["weight"].values())
    for point in block["curve"]:
        assert block["shared_cost"]["parameters"] <= point["parameters"] <= block["anchor_cost"]["parameters"]
        assert block["shared_cost"]["flops"] <= point["flops"] <= block["anchor_cost"]["flops"]
    assert cli.main(["table", "--experiment", "scenes_dymu", "--table", "dymu"]) == 0
    table = pd.read_csv(tmp_path / pipeline.table_paths(prof, "scenes_dymu", "dymu")[0])
    assert set(table.label) == {"DYMU, c = 0", "DYMU, c = 1", "anchor net (N streams)", "one shared trunk", "controller (edge + weight hypernets)"}
    row = table[(table.label == "DYMU, c = 1") & (table.metric == "parameters")].iloc[0]
    assert row["mean"] == pytest.approx(round(block["summary"]["1.0"]["parameters"] * 1e-6, 4))
    for figure in FIGURES:
        assert cli.main(["figure", "--experiment", "scenes_dymu", "--figure", figure]) == 0
        assert all((tmp_path / p).stat().st_size > 0 for p in pipeline.figure_paths(prof, "scenes_dymu", figure))

    capsys.readouterr()
    assert cli.main(["predict", "--run", run.id, "--preference", "2,1,1", "--budget", "1"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["preference"] == [0.5, 0.25, 0.25] and result["budget"] == 1.0
    assert "layer 0:" in captured.err and set(result["metrics"]) == {"semantic", "depth", "normal"}
    assert cli.main(["predict", "--run", run.id, "--preference", "1,1,1"]) != 0  # --budget is required
    assert "--budget" in capsys.readouterr().err
    assert cli.main(["predict", "--run", run.id, "--preference", "1,1,1", "--budget", "1.5"]) != 0
    assert "budget" in capsys.readouterr().err

    # Python API: the same tree and cost as the evaluation's
    from mtlpareto.training.dymu import load_dymu

    model = load_dymu(checkpoint)
    point = block["curve"][-1]
    tree = model.configure(point["preference"], point["budget"])
    assert tree == Tree.from_json(point["tree"]) and model.cost() == {"parameters": point["parameters"], "flops": point["flops"]}
    x = model.prepare_inputs(torch.load(tmp_path / pipeline.processed_path(prof, "rooms"), weights_only=False)["test"][0][:2])
    assert [tuple(o.shape) for o in model(x)] == [(2, 13, 32, 64), (2, 1, 32, 64), (2, 3, 32, 64)]


def test_anchor_must_be_another_experiment_with_single_task_runs_of_the_same_model():
    prof = load_profile(dymu_params(anchor="nowhere"))
    with pytest.raises(ConfigError, match="methods.dymu.anchor: 'nowhere' is not another experiment"):
        prof.run_spec(prof.run("scenes_dymu/dymu/default/seed0"))
    params = dymu_params()
    params["profiles"]["t"]["experiments"]["scenes"]["model"] = {"name": "segnet", "width": 0.25}
    prof = load_profile(params)
    with pytest.raises(ConfigError, match="same backbone on the same data"):
        prof.run_spec(prof.run("scenes_dymu/dymu/default/seed0"))
    params = dymu_params()
    params["profiles"]["t"]["experiments"]["scenes"]["methods"] = {"uniform": {}}
    prof = load_profile(params)
    with pytest.raises(ConfigError, match="no single_task runs of seed 0"):
        prof.run_spec(prof.run("scenes_dymu/dymu/default/seed0"))
    # runs of other methods keep their spec (no extra key, so no job reruns)
    assert "anchor" not in load_profile(dymu_params()).run_spec(load_profile(dymu_params()).run("scenes/single_task/task-depth/seed0"))


def test_dymu_options_are_checked_when_the_method_is_built():
    from mtlpareto.methods import build_method

    from mtlpareto.data import dataset_tasks
    from mtlpareto.training.dymu import DymuLearner

    spec = load_profile(dymu_params()).run_spec(load_profile(dymu_params()).run("scenes_dymu/dymu/default/seed0"))
    spec["method"] = {"name": "dymu"}  # no anchor: a plain network could use it, the DYMU learner cannot
    tasks = dataset_tasks(spec["dataset"])
    with pytest.raises(ConfigError, match="option anchor"):
        DymuLearner(spec, tasks, (3, 32, 64), build_method(spec["method"], 3), torch.device("cpu"), torch.contiguous_format)
    with pytest.raises(ConfigError, match="option anchor"):
        build_method({"name": "dymu", "anchor": 3}, 3)
    with pytest.raises(ConfigError, match="hv_reference has 2 entries"):
        build_method({"name": "dymu", "anchor": "a", "hv_reference": [1.0, 2.0]}, 3)
    with pytest.raises(MTLParetoError, match="eval_budgets"):
        build_method({"name": "dymu", "anchor": "a", "eval_budgets": [1.5]}, 3)
