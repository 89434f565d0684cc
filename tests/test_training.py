"""Training UX: determinism, atomic checkpoints with resume, and a clear NaN error."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import tiny_params
from mtlpareto.config import load_profile
from mtlpareto.data.store import save_processed
from mtlpareto.errors import TrainingError
from mtlpareto.training import loop, run_state


def _dataset(path, n=96, nan=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    if nan:
        x = x.float()
        x[0, 0, 0, 0] = float("nan")
    y = torch.randint(0, 10, (n, 2), generator=g)
    data = {"train": (x, y), "val": (x[:16], y[:16]), "test": (x[:16], y[:16]), "tasks": ["left", "right"], "meta": {}}
    save_processed(data, path)
    return path


def _spec(method="mgda_ub", epochs=3):
    prof = load_profile(tiny_params(methods={method: {}}, epochs=epochs))
    spec = prof.run_spec(prof.runs()[0])
    spec["train"]["batch_size"] = 32
    return spec


def _train(spec, tmp_path, name):
    ckpt = tmp_path / name / "model.pt"
    loop.train_run(spec, tmp_path / "data.pt", ckpt, tmp_path / name / "log.jsonl", progress=False)
    return torch.load(ckpt, weights_only=False)["model"]


def test_training_is_deterministic_for_a_seed(tmp_path):
    _dataset(tmp_path / "data.pt")
    spec = _spec(epochs=1)
    a, b = _train(spec, tmp_path, "a"), _train(spec, tmp_path, "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    spec["seed"] = 1
    c = _train(spec, tmp_path, "c")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_killed_run_resumes_and_matches_an_uninterrupted_one(tmp_path, monkeypatch):
    _dataset(tmp_path / "data.pt")
    spec = _spec(epochs=3)
    reference = _train(spec, tmp_path, "ref")

    real_save = run_state.atomic_torch_save
    calls = {"n": 0}

    def save_then_die(obj, path):
        real_save(obj, path)
        calls["n"] += 1
        if calls["n"] == 2:  # killed right after the epoch-2 checkpoint
            raise KeyboardInterrupt

    monkeypatch.setattr(run_state, "atomic_torch_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _train(spec, tmp_path, "killed")
    monkeypatch.setattr(run_state, "atomic_torch_save", real_save)
    assert (tmp_path / "killed" / "resume.pt").exists()
    assert not (tmp_path / "killed" / "model.pt").exists()

    resumed = _train(spec, tmp_path, "killed")
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    assert not (tmp_path / "killed" / "resume.pt").exists()
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path, monkeypatch):
    _dataset(tmp_path / "data.pt")
    spec = _spec(epochs=2)
    monkeypatch.setattr(run_state, "atomic_torch_save", lambda obj, path: (_ for _ in ()).throw(KeyboardInterrupt) if path.name == "model.pt" else torch.save(obj, path))
    with pytest.raises(KeyboardInterrupt):
        _train(spec, tmp_path, "x")
    monkeypatch.undo()
    spec["train"]["lr"] = 0.5
    with pytest.raises(TrainingError, match="other settings"):
        _train(spec, tmp_path, "x")


def test_nan_loss_stops_with_the_run_name(tmp_path):
    _dataset(tmp_path / "data.pt", nan=True)
    spec = _spec(epochs=1)
    with pytest.raises(TrainingError, match=r"multimnist/mgda_ub/default/seed0: non-finite loss at epoch 1, step \d+"):
        _train(spec, tmp_path, "nan")
