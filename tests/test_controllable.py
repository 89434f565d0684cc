"""Controllable Pareto MTL and PHN: directions against independent references, the
hypernetwork's caching and parameter ownership, preference validation, training behaviour,
resume, the CIFAR-100/20 dataset kind and the synthetic experiment end to end through the CLI.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import torch

from mtlpareto.config import train_settings
import yaml

from mtlpareto import cli, pipeline
from mtlpareto.config import load_profile
from mtlpareto.controllable import parse_preference
from mtlpareto.training import evaluate as ctrl_eval
from mtlpareto.training.loop import train_run
from mtlpareto.methods.controllable import ControllableStepContext
from mtlpareto.solvers.directions import DirectionError, ctrl_pareto_weights, epo_weights
from mtlpareto.data.synthetic import SineFonseca
from mtlpareto.tasks.classification import ClassificationTask
from mtlpareto.data import fetch_dataset
from mtlpareto.data.store import save_processed
from mtlpareto.errors import ConfigError, DatasetMissingError, TrainingError
from mtlpareto.methods import build_method
from mtlpareto.models import build_model
from mtlpareto.models.hypernet import ControllableModel, FunctionalTarget, HyperNetwork, normalize_preference
from mtlpareto.training import run_state


# --------------------------------------------------------------------------- ctrl_pareto direction


def _unit_direction_reference(p: np.ndarray) -> np.ndarray:
    inv = 1.0 / p
    return inv / np.linalg.norm(inv)


def _slsqp_min_norm(v: np.ndarray, starts: int = 4, seed: int = 0) -> np.ndarray:
    """min ||w^T V||^2 over the simplex by SLSQP from several starts (independent of our solver)."""
    k = v.shape[0]
    gram = v @ v.T
    rng = np.random.default_rng(seed)
    best = None
    for s in range(starts):
        x0 = np.full(k, 1.0 / k) if s == 0 else rng.dirichlet(np.ones(k))
        res = scipy.optimize.minimize(
            lambda w: w @ gram @ w, x0, jac=lambda w: 2 * gram @ w, method="SLSQP",
            bounds=[(0, 1)] * k, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(k)}],
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        if best is None or res.fun < best.fun:
            best = res
    w = np.clip(best.x, 0, None)
    return w / w.sum()


@pytest.mark.parametrize("seed, n_prefs", [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2)])
def test_ctrl_pareto_direction_matches_an_independent_qp(seed, n_prefs):
    rng = np.random.default_rng(seed)
    t, d, k = 2 if seed % 2 else 3, 12, 4
    jac = rng.standard_normal((n_prefs * t, d))
    losses = rng.uniform(0.2, 2.0, (n_prefs, t))
    prefs = rng.dirichlet(np.ones(t), n_prefs)
    refs = np.abs(rng.standard_normal((k, t)))
    refs /= np.linalg.norm(refs, axis=1, keepdims=True)

    result = ctrl_pareto_weights(torch.from_numpy(jac @ jac.T), torch.from_numpy(losses), torch.from_numpy(prefs), torch.from_numpy(refs), restore_below=0.0)

    # Independent: active constraints from the angle criterion itself, explicit gradient rows.
    rows = [jac]
    u = np.array([_unit_direction_reference(p) for p in prefs])
    n_active = 0
    for i in range(n_prefs):
        others = [u[j] for j in range(n_prefs) if j != i]
        cos_pref = losses[i] @ u[i] / np.linalg.norm(losses[i])
        for r in list(refs) + others:
            if losses[i] @ r / np.linalg.norm(losses[i]) >= cos_pref:  # as close (in angle) to r as to u
                coef = np.zeros(n_prefs * t)
                coef[i * t : (i + 1) * t] = r - u[i]
                rows.append((coef @ jac)[None])
                n_active += 1
    v = np.concatenate(rows)
    w = _slsqp_min_norm(v, seed=seed)
    direction = w @ v
    alpha_ref = np.linalg.lstsq(jac.T, direction, rcond=None)[0]  # J has full row rank
    alpha_ref /= np.abs(alpha_ref).sum()

    assert len(result.active) == n_active
    np.testing.assert_allclose(result.weights.numpy().reshape(-1), alpha_ref, atol=2e-5)
    # Our unnormalised min-norm point satisfies the KKT conditions on the independent hull:
    # v . d >= ||d||^2 for every task and active-constraint gradient v.
    a = np.concatenate([np.eye(n_prefs * t), result.constraint_rows.numpy()])
    d = result.dual.numpy() @ a @ jac
    assert d @ d == pytest.approx(direction @ direction, rel=1e-6, abs=1e-12)
    assert (v @ d >= d @ d - 1e-9).all()


def test_the_direction_cases_include_active_constraints():
    # Guard for the test above: its random cases must exercise constraints.
    counts = []
    for seed, n_prefs in [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2)]:
        rng = np.random.default_rng(seed)
        t = 2 if seed % 2 else 3
        rng.standard_normal((n_prefs * t, 12))
        losses = rng.uniform(0.2, 2.0, (n_prefs, t))
        prefs = rng.dirichlet(np.ones(t), n_prefs)
        refs = np.abs(rng.standard_normal((4, t)))
        refs /= np.linalg.norm(refs, axis=1, keepdims=True)
        from mtlpareto.solvers.directions import constraint_rows

        counts.append(len(constraint_rows(torch.from_numpy(losses), torch.from_numpy(prefs), torch.from_numpy(refs))[1]))
    assert sum(c > 0 for c in counts) >= 3, counts


def test_ctrl_pareto_feasibility_step_when_stuck_on_the_front():
    # Opposing task gradients (Pareto stationary) and a loss vector outside its region.
    g = np.array([[1.0, 0.5, 0.0], [-2.0, -1.0, 0.0]])
    losses = torch.tensor([[0.9, 0.1]])  # points along task 1; preference asks for the 45 degree ray
    prefs = torch.tensor([[0.5, 0.5]])
    refs = torch.tensor([[1.0, 0.0]])
    gram = torch.from_numpy(g @ g.T)
    plain = ctrl_pareto_weights(gram, losses, prefs, refs, restore_below=0.0)
    assert np.linalg.norm(plain.weights.numpy().reshape(-1) @ g) < 1e-9  # the combined dual is stuck
    restored = ctrl_pareto_weights(gram, losses, prefs, refs, restore_below=1e-3)
    assert restored.restored == [0]
    # The step -d lowers the violated G = (r - u)^T L: d . grad G > 0.
    u = _unit_direction_reference(np.array([0.5, 0.5]))
    grad_g = (np.array([1.0, 0.0]) - u) @ g
    d = restored.weights.numpy().reshape(-1) @ g
    assert d @ grad_g > 0


# --------------------------------------------------------------------------- EPO


def _epo_reference(losses, gram, r, eps=1e-4, grid=200001):
    """EPO's LPs for two tasks by brute force over alpha = (a, 1 - a) on a fine grid.

    Returns (mode, best objective or None when infeasible, objective(alpha), feasible(alpha)).
    """
    a = np.linspace(0, 1, grid)
    alphas = np.stack([a, 1 - a], 1)
    rl = r * losses
    lh = rl / rl.sum()
    mu = float(np.sum(lh * np.log(lh * 2)))
    ca = gram @ (r * (np.log(lh * 2) - mu))
    tol = 1e-9

    if mu > eps:
        def feasible(al):
            c_alpha = al @ gram
            ok = np.ones(len(al), dtype=bool)
            for j in range(2):
                if (ca > 0).any():
                    if rl[j] == rl.max():
                        ok &= c_alpha[:, j] >= -tol
                    elif ca[j] <= 0:
                        ok &= c_alpha[:, j] >= ca[j] - tol
                else:
                    ok &= c_alpha[:, j] >= -tol
            return ok

        def objective(al):
            return al @ ca
        mode = "balance"
    else:
        def feasible(al):
            return (al @ gram >= -tol).all(1) & (al @ ca >= min(ca.max(), 0) - tol)

        def objective(al):
            return (al @ gram).sum(1)
        mode = "descent"
    ok = feasible(alphas)
    best = float(objective(alphas)[ok].max()) if ok.any() else None
    return mode, best, objective, feasible


@pytest.mark.parametrize("seed", range(8))
def test_epo_direction_matches_brute_force_lp(seed):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((2, 5))
    gram = g @ g.T
    losses = rng.uniform(0.3, 2.0, 2)
    r = rng.dirichlet([1.0, 1.0])
    if seed >= 6:  # on the ray r_1 L_1 = r_2 L_2: the descent LP
        losses = 0.4 / r
    ours = epo_weights(losses, gram, r)
    mode, best, objective, feasible = _epo_reference(losses, gram, r)
    assert ours.mode.startswith(mode)
    if ours.mode == "descent_relaxed":
        assert best is None  # the restricted LP really is infeasible
        return
    assert best is not None
    assert feasible(ours.weights[None])[0]
    assert float(objective(ours.weights[None])[0]) == pytest.approx(best, rel=1e-4, abs=1e-6)


def test_epo_infeasible_lp_is_an_error_not_a_fallback(monkeypatch):
    class Infeasible:
        status, message, x = 2, "infeasible", None

    monkeypatch.setattr(scipy.optimize, "linprog", lambda *a, **k: Infeasible())
    with pytest.raises(DirectionError, match="infeasible"):
        epo_weights(np.array([1.0, 0.2]), np.eye(2), np.array([0.5, 0.5]))


# --------------------------------------------------------------------------- hypernetwork


def _lenet_controllable(chunk_size="auto", seed=0) -> ControllableModel:
    torch.manual_seed(seed)
    target = FunctionalTarget(lambda: build_model("lenet", [10, 10], (1, 28, 28)))
    hyper = HyperNetwork(2, target.shapes, target.init_std, hidden_dim=16, n_hidden=2, embedding_dim=8, chunk_size=chunk_size)
    return ControllableModel(target, hyper, tasks=[ClassificationTask("left", 10), ClassificationTask("right", 10)])


def test_target_network_owns_no_parameters():
    model = _lenet_controllable()
    plain = build_model("lenet", [10, 10], (1, 28, 28))
    assert not isinstance(model.target, torch.nn.Module)
    assert all(p.is_meta for p in model.target.skeleton.parameters())
    assert {id(p) for p in model.parameters()} == {id(p) for p in model.hypernet.parameters()}
    assert "target" not in dict(model.named_children())
    assert model.target_parameters == sum(p.numel() for p in plain.parameters()) == 27450
    assert model.hypernet_parameters == sum(p.numel() for p in model.parameters())
    assert not any(k.startswith("target") for k in model.state_dict())


@pytest.mark.parametrize("chunk_size", ["auto", None, 1000])
def test_set_preference_caches_the_generated_weights(chunk_size):
    model = _lenet_controllable(chunk_size).eval()
    x = torch.randn(5, 1, 28, 28)
    p = torch.tensor([0.3, 0.7])
    with torch.no_grad():
        expected = model.forward_with(model.generate(p), x)
    model.generations = 0
    model.set_preference([3, 7])  # normalised to (0.3, 0.7)
    first = model(x)
    for a, b in zip(first, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for _ in range(3):
        model(x)
    model.set_preference([0.3, 0.7])
    assert model.generations == 1  # neither forward nor re-setting the same preference regenerates
    model.set_preference([0.8, 0.2])
    assert model.generations == 2
    other = model(x)
    assert not torch.allclose(other[0], first[0])
    # An in-place update of the hypernetwork (an optimiser step) invalidates the cache.
    with torch.no_grad():
        next(model.hypernet.parameters()).add_(0.01)
    model(x)
    assert model.generations == 3


def test_generated_weights_start_at_the_default_init_scale():
    model = _lenet_controllable()
    plain = dict(build_model("lenet", [10, 10], (1, 28, 28)).named_parameters())
    with torch.no_grad():
        generated = model.generate(torch.tensor([0.5, 0.5]))
        for name in ("encoder.3.weight", "encoder.8.weight", "heads.0.0.weight"):
            assert float(generated[name].std()) == pytest.approx(float(plain[name].std()), rel=0.3)


@pytest.mark.parametrize(
    "value, fragment",
    [([0.5], "2 tasks"), ([0.5, 0.3, 0.2], "2 tasks"), ([-0.1, 1.1], "negative"), ([0, 0], "all zero"), ([float("nan"), 1], "NaN")],
)
def test_preference_validation_errors(value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        normalize_preference(value, 2)


def test_preference_parsing_normalises():
    assert parse_preference("1, 3", 2) == pytest.approx((0.25, 0.75))
    assert parse_preference("0,1", 2) == (0.0, 1.0)
    with pytest.raises(ConfigError, match="comma-separated numbers"):
        parse_preference("0.3;0.7", 2)
    with pytest.raises(ConfigError, match="not set|set_preference"):
        _lenet_controllable()(torch.zeros(1, 1, 28, 28))


def test_masked_losses_skip_ignored_labels_and_absent_tasks():
    tasks = [ClassificationTask("a", 3), ClassificationTask("b", 3)]
    logits = [torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)]
    y = torch.tensor([[0, -100], [1, -100], [-100, -100], [2, -100]])
    losses = torch.stack([t.loss(out, y[:, i]) for i, (t, out) in enumerate(zip(tasks, logits))])
    expected = torch.nn.functional.cross_entropy(logits[0][[0, 1, 3]], y[[0, 1, 3], 0])
    torch.testing.assert_close(losses[0], expected)
    assert float(losses[1].detach()) == 0.0
    losses.sum().backward()
    assert torch.equal(logits[1].grad, torch.zeros(4, 3))


# --------------------------------------------------------------------------- synthetic problem


def test_synthetic_pareto_set_is_stationary_and_maps_onto_the_front():
    problem = SineFonseca(dim=5)
    u = np.linspace(-0.95, 0.95, 9)
    x = torch.tensor(problem.pareto_set(u), requires_grad=True)
    f = problem.objectives(x)
    np.testing.assert_allclose(f.detach().numpy(), problem.pareto_front(u), atol=1e-12)
    g1 = torch.autograd.grad(f[:, 0].sum(), x, retain_graph=True)[0]
    g2 = torch.autograd.grad(f[:, 1].sum(), x)[0]
    cos = (g1 * g2).sum(1) / (g1.norm(dim=1) * g2.norm(dim=1))
    np.testing.assert_allclose(cos.numpy(), -1.0, atol=1e-9)  # opposing gradients: Pareto stationary
    # Random points are dominated by the front; the front is concave (above its chord).
    rng = np.random.default_rng(0)
    front = problem.pareto_front(np.linspace(-1, 1, 2001))
    for fx in problem.objectives(torch.from_numpy(rng.normal(0, 0.5, (50, 5)))).numpy():
        assert ((front <= fx + 1e-12).all(1)).any()
    mid = problem.pareto_front(np.array([0.0]))[0]
    assert mid.sum() > front[0].sum()


def _synthetic_spec(tmp_path: Path, method: str, epochs: int = 3, steps: int = 100, lr: float = 0.01, seed: int = 0, **options) -> dict:
    data = {"train": (torch.zeros(0, 6), torch.zeros(0, 2)), "val": (torch.zeros(0, 6), torch.zeros(0, 2)), "test": (torch.zeros(0, 6), torch.zeros(0, 2)),
            "tasks": ["f1", "f2"], "meta": {"synthetic": {"problem": "sine_fonseca", "dim": 6, "steps_per_epoch": steps}}}
    save_processed(data, tmp_path / "synthetic.pt")
    return {
        "run": f"synthetic/{method}/default/seed{seed}",
        "dataset": {"kind": "synthetic", "problem": "sine_fonseca", "dim": 6, "steps_per_epoch": steps},
        "model": {"name": "decision_vector"},
        "train": train_settings({"epochs": epochs, "batch_size": 1, "optimizer": "adam", "lr": lr, "momentum": 0.0, "weight_decay": 0.0, "lr_halve_every": None, "checkpoint_every": 1}),
        "method": {"name": method, "hidden_dim": 50, "n_hidden": 2, "chunk_size": None, "eval_points": 11, "hv_reference": 1.0,
                   **({"restore_below": 1e-3} if method == "ctrl_pareto" else {}), **options},
        "preference": None, "preference_set": None, "task": None, "seed": seed, "device": "cpu",
    }


@pytest.mark.parametrize("method", ["ctrl_pareto", "ctrl_linear"])
def test_raising_a_tasks_preference_lowers_its_loss(tmp_path, method):
    spec = _synthetic_spec(tmp_path, method, epochs=4)
    train_run(spec, tmp_path / "synthetic.pt", tmp_path / "m.pt", tmp_path / "log.jsonl", progress=False)
    model = ctrl_eval.load_controllable(tmp_path / "m.pt")
    f = [ctrl_eval.predict(model, {}, "test", [p, 1 - p])["losses"] for p in (0.15, 0.5, 0.85)]
    f1 = [v["f1"] for v in f]
    f2 = [v["f2"] for v in f]
    if method == "ctrl_pareto":
        assert f1[0] > f1[1] > f1[2] and f2[0] < f2[1] < f2[2]
    else:  # on a concave front linear scalarisation jumps between the ends
        assert f1[0] > f1[2] + 0.5 and f2[0] + 0.5 < f2[2]


def _kill_after_epoch(monkeypatch, epoch: int):
    real_save = run_state.atomic_torch_save
    calls = {"n": 0}

    def save_then_die(obj, path):
        real_save(obj, path)
        calls["n"] += 1
        if calls["n"] == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_state, "atomic_torch_save", save_then_die)


def _image_dataset(path: Path, n: int = 64) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n, 2), generator=g)
    save_processed({"train": (x, y), "val": (x[:16], y[:16]), "test": (x[:16], y[:16]), "tasks": ["left", "right"], "meta": {}}, path)


def _image_spec(method: str, epochs: int = 3, **options) -> dict:
    from conftest import tiny_params

    prof = load_profile(tiny_params(methods={"linear": {}}, epochs=epochs))
    spec = prof.run_spec(prof.runs("multimnist")[0])
    spec.update(run=f"multimnist/{method}/default/seed0", preference=None, preference_set=None)
    spec["train"].update(batch_size=32, optimizer="adam", lr=1e-3)
    spec["method"] = {"name": method, "hidden_dim": 16, "embedding_dim": 8, "eval_points": 3, **options}
    return spec


@pytest.mark.parametrize("kind", ["synthetic", "images"])
def test_a_killed_controllable_run_resumes_to_the_same_weights(tmp_path, monkeypatch, kind):
    if kind == "synthetic":
        spec = _synthetic_spec(tmp_path, "ctrl_pareto", epochs=3, steps=15)
        data = tmp_path / "synthetic.pt"
    else:
        _image_dataset(tmp_path / "images.pt")
        spec, data = _image_spec("ctrl_pareto"), tmp_path / "images.pt"

    def train(name):
        train_run(spec, data, tmp_path / name / "model.pt", tmp_path / name / "log.jsonl", progress=False)
        return torch.load(tmp_path / name / "model.pt", weights_only=False)

    reference = train("ref")
    _kill_after_epoch(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train("killed")
    monkeypatch.undo()
    assert (tmp_path / "killed" / "resume.pt").exists() and not (tmp_path / "killed" / "model.pt").exists()
    resumed = train("killed")
    assert all(torch.equal(reference["hypernet"][k], resumed["hypernet"][k]) for k in reference["hypernet"])
    assert not (tmp_path / "killed" / "resume.pt").exists()
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    assert resumed["parameters"]["target"] == (6 if kind == "synthetic" else 27450)
    assert resumed["parameters"]["hypernetwork"] == sum(v.numel() for v in resumed["hypernet"].values())

    spec["train"]["lr"] = 0.5
    _kill_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        train("other")
    monkeypatch.undo()
    spec["train"]["lr"] = 0.25
    with pytest.raises(TrainingError, match="other settings"):
        train("other")


@pytest.mark.parametrize("method", ["phn_ls", "phn_epo", "ctrl_linear"])
def test_image_methods_train_and_evaluate(tmp_path, method):
    _image_dataset(tmp_path / "images.pt", n=64)
    spec = _image_spec(method, epochs=1, **({"hidden_dim": 8} if method.startswith("phn") else {}))
    train_run(spec, tmp_path / "images.pt", tmp_path / "m.pt", tmp_path / "log.jsonl", progress=False)
    data = torch.load(tmp_path / "images.pt", weights_only=False)
    record = ctrl_eval.evaluate_hypernetwork(spec, data, tmp_path / "m.pt")
    assert set(record["splits"]) == {"val", "test"} and 0 <= record["splits"]["test"]["left"]["accuracy"] <= 100
    assert len(record["curve"]["test"]) == 3 and record["curve"]["test"][0]["preference"] == [0.0, 1.0]
    assert 0.0 <= record["hypervolume"]["test"] <= 4.0
    log = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    if method == "phn_epo":
        assert sum(v for k, v in log["method_stats"].items() if k.startswith("epo_")) == pytest.approx(1.0)


# --------------------------------------------------------------------------- CIFAR-100 / 20 tasks


def _write_cifar(folder: Path, n_train: int = 40, n_test: int = 20) -> None:
    from mtlpareto.data.cifar100_tasks import COARSE_OF_FINE

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(0, 100, n)
        entry = {"filenames": [f"{i}.png" for i in range(n)], "batch_label": name, "fine_labels": fine.tolist(),
                 "coarse_labels": [COARSE_OF_FINE[f] for f in fine], "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [str(i) for i in range(100)], "coarse_label_names": []}, protocol=2))


def test_cifar100_tasks_builds_twenty_five_way_tasks(tmp_path):
    from mtlpareto.data import DATASETS
    from mtlpareto.data.cifar100_tasks import COARSE_OF_FINE

    _write_cifar(tmp_path / "cifar-100-python")
    kind = DATASETS.get("cifar100_tasks")
    data = kind.build(tmp_path, check_md5=False, val_size=10, seed=0)
    assert [t.n_classes for t in kind.tasks({})] == [5] * 20
    assert data["train"][0].shape == (30, 3, 32, 32) and data["train"][0].dtype == torch.uint8
    assert data["val"][1].shape == (10, 20) and data["test"][1].shape == (20, 20)
    raw = pickle.loads((tmp_path / "cifar-100-python" / "test").read_bytes())
    y = data["test"][1]
    for i, fine in enumerate(raw["fine_labels"]):
        coarse = COARSE_OF_FINE[fine]
        siblings = sorted(f for f in range(100) if COARSE_OF_FINE[f] == coarse)
        assert y[i, coarse] == siblings.index(fine)
        assert (y[i] != -100).sum() == 1
    np.testing.assert_array_equal(data["test"][0][0].numpy().reshape(-1), raw["data"][0])
    with pytest.raises(DatasetMissingError, match="MD5 mismatch"):
        kind.build(tmp_path, check_md5=True)
    with pytest.raises(DatasetMissingError, match=r"expected directory.*\n.*\n.*train  \(md5 16019d7e"):
        fetch_dataset({"kind": "cifar100_tasks", "path": str(tmp_path / "nowhere")}, tmp_path)


# --------------------------------------------------------------------------- the synthetic experiment through the CLI


def test_synthetic_experiment_end_to_end_through_the_cli(tmp_path, monkeypatch, capsys):
    params = {
        "profile": "t",
        "profiles": {"t": {
            "device": "cpu", "seeds": [0],
            "datasets": {"syn": {"kind": "synthetic", "problem": "sine_fonseca", "dim": 4, "steps_per_epoch": 40}},
            "experiments": {"synthetic": {
                "dataset": "syn", "model": {"name": "decision_vector"},
                "train": train_settings({"epochs": 2, "batch_size": 1, "optimizer": "adam", "lr": 0.01}),
                "methods": {
                    "ctrl_linear": {"hidden_dim": 20, "chunk_size": None, "eval_points": 9, "hv_reference": 1.0},
                    "ctrl_pareto": {"hidden_dim": 20, "chunk_size": None, "eval_points": 9, "hv_reference": 1.0, "restore_below": 1e-3},
                },
                "tables": ["hypervolume"], "figures": ["pareto_front"],
            }},
        }},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fetch", "--dataset", "syn"]) == 0
    assert cli.main(["build-data", "--dataset", "syn"]) == 0
    for method in ("ctrl_linear", "ctrl_pareto"):
        run = f"synthetic/{method}/default/seed0"
        assert cli.main(["train", "--run", run, "--no-progress"]) == 0
        assert cli.main(["evaluate", "--run", run]) == 0
    assert cli.main(["table", "--experiment", "synthetic", "--table", "hypervolume"]) == 0
    assert cli.main(["figure", "--experiment", "synthetic", "--figure", "pareto_front"]) == 0

    prof = load_profile("params.yaml")
    for target in pipeline.report_targets(prof):
        assert (tmp_path / target).stat().st_size > 0, target
    record = json.loads((tmp_path / pipeline.metrics_path(prof, prof.run("synthetic/ctrl_pareto/default/seed0"))).read_text())
    assert set(record["splits"]["test"]) == {"f1", "f2"} and len(record["curve"]["test"]) == 9
    assert record["hypervolume"]["reference"] == [1.0, 1.0]
    assert 0 < record["hypervolume"]["test"] <= record["true_front"]["hypervolume"] + 1e-9
    assert len(record["curve"]["test"][0]["solution"]) == 4
    table = (tmp_path / pipeline.table_paths(prof, "synthetic", "hypervolume")[0]).read_text().splitlines()
    assert table[0].startswith("method,label,task,metric,split,mean,std,n_seeds")
    assert [line.split(",")[0] for line in table[1:]] == ["ctrl_linear", "ctrl_pareto", "true_front"]

    capsys.readouterr()
    assert cli.main(["predict", "--run", "synthetic/ctrl_pareto/default/seed0", "--preference", "1,3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["preference"] == [0.25, 0.75] and set(out["losses"]) == {"f1", "f2"} and len(out["solution"]) == 4
    assert cli.main(["predict", "--run", "synthetic/ctrl_pareto/default/seed0", "--preference", "0.5,0.2,0.3"]) == 2
    assert "has 3 entries but the model has 2 tasks" in capsys.readouterr().err
    assert cli.main(["predict", "--run", "synthetic/ctrl_pareto/default/seed0", "--preference", "0,0"]) == 2
    assert "all zero" in capsys.readouterr().err
