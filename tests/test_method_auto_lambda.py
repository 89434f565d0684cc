"""Auto-Lambda: the finite-difference hypergradient against the exact derivative through the
virtual step (autograd of the unrolled update), the Adam step on lambda, the network's update,
no side effects on the model, and training with validation batches."""

from __future__ import annotations

import io
import json

import pytest
import torch
from torch import nn

from conftest import tiny_params
from mtlpareto.config import load_profile
from mtlpareto.data.problems import DatasetProblem
from mtlpareto.data.store import save_processed
from mtlpareto.errors import ConfigError
from mtlpareto.methods import StepContext, build_method
from mtlpareto.models import HardSharing
from mtlpareto.training import loop

ALPHA = 0.1


def _model(seed: int = 0) -> HardSharing:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 4), nn.Tanh())
    heads = [nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1)) for _ in range(3)]
    return HardSharing(encoder, heads).double().train()


def _batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randn(16, 3, generator=g, dtype=torch.float64)


def _losses_fn(model, batch):
    x, y = batch

    def losses(values=None):
        outputs = model(x) if values is None else torch.func.functional_call(model, values, (x,), strict=False)
        return torch.stack([((o.squeeze(-1) - y[:, t]) ** 2).mean() for t, o in enumerate(outputs)])

    return losses


def _context(model, train, val):
    recompute = _losses_fn(model, train)
    ctx = StepContext(model, recompute(), model.encode(train[0]))
    ctx.recompute_losses = recompute
    ctx.validation_losses = _losses_fn(model, val)
    return ctx


def _exact_hypergradient(model, train, val, weights, primary):
    """d/dlambda of L_val(theta - alpha grad_theta sum_t lambda_t L_t) by autograd (second order)."""
    params = list(model.shared_parameters()) + list(model.task_parameters())
    names = {id(p): n for n, p in model.named_parameters()}
    lam = weights.clone().double().requires_grad_(True)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    train_losses = _losses_fn(model, train)(dict(buffers))
    grads = torch.autograd.grad((lam * train_losses).sum(), params, create_graph=True)
    virtual = {names[id(p)]: p - ALPHA * g for p, g in zip(params, grads)}
    val = _losses_fn(model, val)({**{n: b.clone() for n, b in model.named_buffers()}, **virtual})[primary].sum()
    (hyper,) = torch.autograd.grad(val, lam)
    return hyper


@pytest.mark.parametrize("primary", [None, [0], [1, 2]])
def test_finite_difference_hypergradient_matches_the_exact_derivative(primary, monkeypatch):
    from mtlpareto.methods import auto_lambda

    model = _model()
    train, val = _batch(0), _batch(1)
    method = build_method({"name": "auto_lambda", "primary": primary, "virtual_lr": ALPHA}, 3)
    exact = _exact_hypergradient(model, train, val, method.weights.detach(), primary or [0, 1, 2])
    assert float(exact.abs().max()) > 1e-4
    # The reference's radius (0.01 / ||d||): central differences, error O(radius^2).
    torch.testing.assert_close(method.hypergradient(_context(model, train, val)).double(), exact, rtol=1e-3, atol=1e-7)
    # A smaller radius converges to the exact value (up to float32 rounding of the result).
    monkeypatch.setattr(auto_lambda, "FD_RADIUS", 1e-4)
    torch.testing.assert_close(method.hypergradient(_context(model, train, val)).double(), exact, rtol=1e-6, atol=1e-9)


def test_the_step_updates_lambda_by_adam_then_the_network_with_the_new_weights():
    model = _model()
    train, val = _batch(0), _batch(1)
    method = build_method({"name": "auto_lambda", "meta_lr": 0.01}, 3)
    method.start_epoch(0, ALPHA)  # the virtual step's alpha: the optimiser's lr
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    stats = {n: b.detach().clone() for n, b in model.named_buffers()}
    ctx = _context(model, train, val)
    stats_after_forward = {n: b.detach().clone() for n, b in model.named_buffers()}
    hyper = method.hypergradient(_context(_model(), train, val))  # same model state, fresh copy
    weights = method.backward(ctx)
    # Adam's first step moves each weight by lr against the sign of its gradient.
    torch.testing.assert_close(weights, torch.full((3,), 0.1) - 0.01 * torch.sign(hyper), rtol=0, atol=1e-6)
    # Parameters untouched by the virtual / perturbed forwards; BatchNorm statistics only moved
    # by the step's own forward (the model's `_context` call), not by the extra ones.
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert not all(torch.equal(stats[n], b) for n, b in model.named_buffers() if b.dtype.is_floating_point)
    assert all(torch.equal(stats_after_forward[n], b) for n, b in model.named_buffers())
    # The network's gradient: that of sum_t lambda_t L_t with the updated lambda.
    reference = _model()
    ref_losses = _losses_fn(reference, train)()
    (weights.double() * ref_losses).sum().backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


def test_options_and_missing_validation_batches_fail_clearly():
    with pytest.raises(ConfigError, match="primary"):
        build_method({"name": "auto_lambda", "primary": [3]}, 3)
    with pytest.raises(ConfigError, match="primary"):
        build_method({"name": "auto_lambda", "primary": []}, 3)
    with pytest.raises(ConfigError, match="meta_lr"):
        build_method({"name": "auto_lambda", "meta_lr": 0}, 3)
    with pytest.raises(ConfigError, match="weight_init"):
        build_method({"name": "auto_lambda", "weight_init": -1}, 3)
    model = _model()
    x, y = _batch(0)
    ctx = StepContext(model, _losses_fn(model, (x, y))(), None)
    with pytest.raises(ConfigError, match="validation batches"):
        build_method({"name": "auto_lambda"}, 3).backward(ctx)


def test_state_dict_round_trip_continues_identically():
    model = _model()
    method = build_method({"name": "auto_lambda", "virtual_lr": ALPHA, "meta_lr": 0.01}, 3)
    for step in range(2):
        method.backward(_context(model, _batch(step), _batch(10 + step)))
    restored = build_method({"name": "auto_lambda", "virtual_lr": ALPHA, "meta_lr": 0.01}, 3)
    buffer = io.BytesIO()  # through a checkpoint file, as the trainer does
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    a = method.backward(_context(_model(1), _batch(5), _batch(6)))
    b = restored.backward(_context(_model(1), _batch(5), _batch(6)))
    torch.testing.assert_close(a, b)


def test_validation_batches_depend_on_index_and_seed_only_and_cover_the_split():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.arange(40).view(40, 1).repeat(1, 2) % 10
    data = {"train": (x, y), "val": (x[:20], torch.arange(20).view(20, 1).repeat(1, 2)), "test": (x, y), "meta": {}}
    from mtlpareto.tasks.classification import ClassificationTask

    problem = DatasetProblem(data, [ClassificationTask("a", 20), ClassificationTask("b", 20)], batch_size=8)
    first_pass = [problem.validation_batch(i, seed=3)[1] for i in range(3)]
    assert sorted(torch.cat([b[:, 0] for b in first_pass]).tolist()) == list(range(20))
    assert all(torch.equal(a, b) for a, b in zip(first_pass, [problem.validation_batch(i, seed=3)[1] for i in range(3)]))
    assert not torch.equal(problem.validation_batch(0, seed=3)[1], problem.validation_batch(0, seed=4)[1])
    assert not torch.equal(problem.validation_batch(0, seed=3)[1], problem.validation_batch(3, seed=3)[1])  # a new order per pass


@pytest.mark.parametrize("architecture", [None, "mpps"])
def test_training_with_auto_lambda_learns_weights_and_is_deterministic(tmp_path, architecture):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 28, 28), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (64, 2), generator=g)
    save_processed({"train": (x, y), "val": (x[:16], y[:16]), "test": (x[:16], y[:16]), "tasks": ["left", "right"], "meta": {}}, tmp_path / "data.pt")
    prof = load_profile(tiny_params(methods={"auto_lambda": {"meta_lr": 0.01}}, epochs=2))
    spec = prof.run_spec(prof.runs()[0])
    spec["train"]["batch_size"] = 32
    if architecture:
        spec["model"] = {"name": "lenet", "architecture": architecture, "architecture_options": {"layers": 2, "frozen_epochs": 0}}
    states = []
    for name in ("a", "b"):
        loop.train_run(spec, tmp_path / "data.pt", tmp_path / name / "model.pt", tmp_path / name / "log.jsonl", progress=False)
        states.append(torch.load(tmp_path / name / "model.pt", weights_only=False)["model"])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    weights = [w for record in log for w in record["mean_weight"].values()]
    assert all(w != pytest.approx(0.1, abs=1e-6) for w in weights[2:])  # lambda moved off its start


def test_mtlstep_refuses_auto_lambda_with_a_clear_error():
    from mtlpareto.methods import MTLStep

    with pytest.raises(ConfigError, match="validation losses"):
        MTLStep("auto_lambda", 2, _model().shared_parameters())
