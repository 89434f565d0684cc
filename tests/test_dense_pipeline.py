"""The dense experiment through the CLI, as its pipeline jobs run it: rendered scenes, SegNet,
the dense table (with delta_m) and the prediction figure."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from mtlpareto import cli, pipeline
from mtlpareto.config import load_profile


def test_dense_experiment_end_to_end_through_the_cli(tmp_path, monkeypatch):
    params = {
        "profile": "t",
        "profiles": {"t": {
            "device": "cpu", "seeds": [0],
            "datasets": {"rooms": {"kind": "scenes", "variant": "indoor", "n_train": 24, "n_test": 8, "val_size": 8, "image_size": [32, 64]}},
            "experiments": {"scenes": {
                "dataset": "rooms", "model": {"name": "segnet", "width": 0.125},
                "train": {"epochs": 1, "batch_size": 8, "optimizer": "adam", "lr": 0.001},
                "methods": {"single_task": {}, "uniform": {}, "mgda_ub": {}},
                "tables": ["dense"], "figures": ["dense_predictions"],
            }},
        }},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fetch", "--dataset", "rooms"]) == 0
    assert cli.main(["build-data", "--dataset", "rooms"]) == 0
    prof = load_profile("params.yaml")
    for run in prof.runs():
        assert cli.main(["train", "--run", run.id, "--no-progress"]) == 0
    for method in ("single_task", "uniform", "mgda_ub"):
        assert cli.main(["evaluate", "--experiment", "scenes", "--method", method]) == 0
    record = json.loads((tmp_path / pipeline.metrics_path(prof, prof.run("scenes/uniform/default/seed0"))).read_text())
    assert set(record["splits"]["test"]) == {"semantic", "depth", "normal"}
    assert [record["tasks"][t]["order"] for t in ("semantic", "depth", "normal")] == [0, 1, 2]
    assert cli.main(["table", "--experiment", "scenes", "--table", "dense"]) == 0
    assert cli.main(["figure", "--experiment", "scenes", "--figure", "dense_predictions"]) == 0
    table = pd.read_csv(tmp_path / pipeline.table_paths(prof, "scenes", "dense")[0])
    assert set(table.method) == {"single_task", "uniform", "mgda_ub"}
    assert {"semantic miou", "depth abs_err", "normal mean_angle", "Δm, one metric per task [%]"} <= set(table.column)
    assert table[table.column.str.startswith("Δm")].method.isin(["uniform", "mgda_ub"]).all()
    for path in pipeline.figure_paths(prof, "scenes", "dense_predictions"):
        assert (tmp_path / path).stat().st_size > 0
