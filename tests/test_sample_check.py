"""`mtlpareto check-sample`: a hash-chosen sample of runs retrained must equal the committed metrics bitwise."""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

import pytest
import yaml

from conftest import project_files, tiny_params
from mtlpareto import cli
from mtlpareto.config import Run
from mtlpareto.errors import ConfigError
from mtlpareto.metrics.sample_check import first_difference, sample_runs


def _runs(n: int) -> list[Run]:
    return [Run("exp", f"m{i}", "default", i % 3) for i in range(n)]


def test_sample_is_the_smallest_sha256_whatever_the_order():
    runs = _runs(40)
    sample = sample_runs(runs, 5)
    # Independent reference: the ids whose SHA-256, read as a 256-bit integer, is smallest.
    by_int = sorted(runs, key=lambda r: int.from_bytes(hashlib.sha256(r.id.encode()).digest(), "big"))
    assert [r.id for r in sample] == [r.id for r in by_int[:5]]
    shuffled = list(runs)
    random.Random(0).shuffle(shuffled)
    assert [r.id for r in sample_runs(shuffled, 5)] == [r.id for r in sample]
    # A new run changes the sample only by entering it (the others keep their order).
    grown = sample_runs(runs + [Run("exp", "new", "default", 0)], 5)
    assert [r.id for r in grown if r.method != "new"] == [r.id for r in sample][: len([r for r in grown if r.method != "new"])]
    assert len(sample_runs(runs[:2], 5)) == 2
    with pytest.raises(ConfigError, match="--runs must be a positive integer"):
        sample_runs(runs, 0)


def test_first_difference_is_exact_and_names_the_key():
    base = {"splits": {"test": {"left": {"accuracy": 71.25, "loss": 0.5}}}, "curve": [1, 2.0, float("nan")]}
    same = json.loads(json.dumps(base))
    assert first_difference(base, same) is None  # NaN equals NaN
    bumped = json.loads(json.dumps(base))
    bumped["splits"]["test"]["left"]["loss"] = math.nextafter(0.5, 1.0)  # one ulp
    assert first_difference(base, bumped).startswith("splits.test.left.loss (committed 0.5, rerun 0.5000000000000001)")
    int_vs_float = json.loads(json.dumps(base))
    int_vs_float["curve"][0] = 1.0
    assert first_difference(base, int_vs_float).startswith("curve[0]")
    shorter = json.loads(json.dumps(base))
    shorter["curve"].pop()
    assert "length 3 committed, 2 in the rerun" in first_difference(base, shorter)
    missing = json.loads(json.dumps(base))
    del missing["splits"]["test"]["left"]["accuracy"]
    assert first_difference(base, missing) == "splits.test.left.accuracy (missing in the rerun)"
    extra = json.loads(json.dumps(base))
    extra["splits"]["new"] = 1
    assert first_difference(base, extra) == "splits.new (only in the rerun)"


@pytest.fixture
def tiny_project(tmp_path, monkeypatch):
    """A tiny profile run through the pipeline's CLI steps, with its reported numbers written."""
    params = tiny_params(methods={"single_task": {}, "uniform": {}, "mgda_ub": {"normalization": "loss+", "solver": "exact"}}, seeds=(0, 1))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    project_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fetch", "--dataset", "multimnist_5k"]) == 0
    assert cli.main(["build-data", "--dataset", "multimnist_5k"]) == 0
    for method in ("single_task", "uniform", "mgda_ub"):
        assert cli.main(["train", "--experiment", "multimnist", "--method", method, "--evaluate", "--no-progress"]) == 0
    assert cli.main(["table", "--experiment", "multimnist", "--table", "accuracy"]) == 0
    assert cli.main(["update-reported"]) == 0
    return tmp_path


def _tree_state(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


def test_check_sample_passes_after_a_run_and_names_a_perturbed_key(tiny_project, capsys):
    before = _tree_state(tiny_project)
    assert cli.main(["check-sample", "--runs", "2"]) == 0
    # Retrained elsewhere: no file of the project (manifests, data, checkpoints) was rewritten or added.
    assert _tree_state(tiny_project) == before
    out = capsys.readouterr().out
    assert "all 2 sampled runs reproduce their committed metrics bitwise" in out
    assert "reported numbers of results/reported/tiny.yaml are within their bands" in out
    sampled = [line.split(": ")[0].strip() for line in out.splitlines() if line.endswith("bitwise equal")]
    assert len(sampled) == 2

    run_id = sampled[1]
    experiment, method, variant, seed = run_id.split("/")
    path = tiny_project / "results/tiny/runs" / experiment / method / variant / seed / "metrics.json"
    record = json.loads(path.read_text())
    task = next(iter(record["splits"]["test"]))
    record["splits"]["test"][task]["accuracy"] += 1e-9  # far inside the reported band
    path.write_text(json.dumps(record, indent=2))
    assert cli.main(["check-sample", "--runs", "2"]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 sampled runs do not reproduce their committed metrics" in err
    assert f"{run_id}: " in err and f"splits.test.{task}.accuracy (committed" in err
    # check-reported alone does not see it: the band is 0.01
    assert cli.main(["check-reported"]) == 0


def test_check_sample_without_committed_metrics(tmp_path, monkeypatch, capsys):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(methods={"uniform": {}})))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check-sample", "--runs", "1"]) == 2
    assert "committed metrics missing, e.g. results/tiny/runs/multimnist/uniform/default/seed0/metrics.json" in capsys.readouterr().err
