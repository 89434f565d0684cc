"""MTL baselines (uncertainty, GradNorm, DWA, RLW, PCGrad, CAGrad, GradDrop, Pareto MTL), each
against an independent reference: a hand-written formula, a brute-force solve, or the problem's
known optimum."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS, StepContext, build_method
from mtlpareto.methods.cagrad import cagrad_dual_weights, cagrad_objective
from mtlpareto.methods.dwa import dwa_weights
from mtlpareto.methods.graddrop import graddrop_mask
from mtlpareto.methods.gradnorm import gradnorm_weight_gradient
from mtlpareto.methods.pcgrad import project_conflicting
from mtlpareto.models import HardSharing, MTLModel

BASELINES = ["uncertainty", "gradnorm", "dwa", "rlw", "pcgrad", "cagrad", "graddrop", "pareto_mtl"]
PREFS = [(k / 6, 1 - k / 6) for k in range(1, 6)]
PREFS3 = [(1 / 3, 1 / 3, 1 / 3), (0.6, 0.2, 0.2), (0.2, 0.6, 0.2), (0.2, 0.2, 0.6)]


# --------------------------------------------------------------------------- helpers


def _mtl(in_dim: int = 6, rep: int = 5, n_tasks: int = 2, seed: int = 0, shared_heads: bool = False) -> MTLModel:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(in_dim, 7), nn.Tanh(), nn.Linear(7, rep), nn.Tanh())
    heads = [nn.Sequential(nn.Linear(rep, 4), nn.Tanh(), nn.Linear(4, 1)) for _ in range(n_tasks)]
    if shared_heads:  # identical heads: with identical targets every task has the same gradient
        heads = [copy.deepcopy(heads[0]) for _ in range(n_tasks)]
    return HardSharing(encoder, heads)


def _forward(model: MTLModel, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = model.encode(x)
    losses = torch.stack([((o.squeeze(-1) - y[:, t]) ** 2).mean() for t, o in enumerate(model.decode(z))])
    return losses, z


def _data(seed: int, n_tasks: int = 2, batch: int = 8, in_dim: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, in_dim, generator=g), torch.randn(batch, n_tasks, generator=g)


def _task_grads(model: MTLModel, losses: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    """Reference per-task gradients: one plain backward pass per task."""
    rows = [torch.autograd.grad(losses[t], params, retain_graph=True) for t in range(len(losses))]
    return torch.stack([torch.cat([g.flatten() for g in row]) for row in rows])


def _flat_grad(params) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in params])


def _kwargs(name: str, n_tasks: int = 2) -> dict:
    if name == "pareto_mtl":
        prefs = PREFS if n_tasks == 2 else PREFS3
        return {"preference": prefs[1], "preference_set": prefs}
    return {}


def _options(name: str) -> dict:
    return {"rlw": {"seed": 3}, "pcgrad": {"seed": 3}, "graddrop": {"seed": 3}, "pareto_mtl": {"init_steps": 2}}.get(name, {})


# --------------------------------------------------------------------------- PCGrad


def _pcgrad_reference(grads: torch.Tensor, orders: list[list[int]]) -> torch.Tensor:
    """Algorithm 1 of Yu et al. written out in parameter space."""
    out = []
    for i, order in enumerate(orders):
        g = grads[i].clone()
        for j in order:
            if g @ grads[j] < 0:
                g = g - (g @ grads[j]) / (grads[j] @ grads[j]) * grads[j]
        out.append(g)
    return torch.stack(out)


def test_pcgrad_two_tasks_removes_the_conflict_by_the_projection_formula():
    g = torch.Generator().manual_seed(0)
    g1 = torch.randn(10, generator=g, dtype=torch.float64)
    g2 = -0.7 * g1 + 0.5 * torch.randn(10, generator=g, dtype=torch.float64)
    assert g1 @ g2 < 0
    projected = project_conflicting(torch.stack([g1, g2]), [[1], [0]])
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2
    p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
    torch.testing.assert_close(projected, torch.stack([p1, p2]))
    assert projected[0] @ g2 >= -1e-12 and projected[1] @ g1 >= -1e-12


def test_pcgrad_without_conflict_keeps_every_gradient():
    grads = torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.0, 0.0], [0.0, 3.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(project_conflicting(grads, [[1, 2], [2, 0], [0, 1]]), grads)


@pytest.mark.parametrize("seed", range(3))
def test_pcgrad_gram_form_matches_the_parameter_space_loop(seed):
    g = torch.Generator().manual_seed(seed)
    grads = torch.randn(4, 12, generator=g, dtype=torch.float64)
    orders = [[j for j in torch.randperm(4, generator=g).tolist() if j != i] for i in range(4)]
    torch.testing.assert_close(project_conflicting(grads, orders), _pcgrad_reference(grads, orders))


def test_pcgrad_method_sets_projected_sum_on_shared_and_own_gradients_on_heads():
    model = _mtl(shared_heads=True)
    x, y = _data(1)
    y[:, 1] = -y[:, 0]  # same heads, opposite targets: conflicting shared gradients
    losses, z = _forward(model, x, y)
    shared = list(model.shared_parameters())
    jac = _task_grads(model, losses, shared)
    assert jac[0] @ jac[1] < 0
    head_ref = torch.autograd.grad(losses.sum(), list(model.task_parameters()), retain_graph=True)
    method = build_method({"name": "pcgrad", "seed": 0}, n_tasks=2)
    weights = method.backward(StepContext(model, losses, z))
    expected = _pcgrad_reference(jac.double(), [[1], [0]]).sum(dim=0).float()
    torch.testing.assert_close(_flat_grad(shared), expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(weights @ jac, expected, rtol=1e-4, atol=1e-6)
    for p, r in zip(model.task_parameters(), head_ref):
        torch.testing.assert_close(p.grad, r)


# --------------------------------------------------------------------------- CAGrad


def _simplex_grid(n_tasks: int, k: int) -> np.ndarray:
    if n_tasks == 2:
        a = np.linspace(0.0, 1.0, k + 1)
        return np.stack([a, 1 - a], axis=1)
    i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
    keep = i + j <= k
    return np.stack([i[keep], j[keep], k - i[keep] - j[keep]], axis=1) / k


def _grid_min(gram: np.ndarray, c: float, k: int) -> float:
    """Brute-force minimum of the CAGrad dual over a fine simplex grid."""
    w = _simplex_grid(gram.shape[0], k)
    g0_norm = math.sqrt(gram.mean())
    return float((w @ gram.mean(axis=1) + c * g0_norm * np.sqrt(np.clip(np.einsum("ij,jk,ik->i", w, gram, w), 0, None))).min())


@pytest.mark.parametrize("n_tasks,c,case", [(2, 0.4, "random"), (2, 0.4, "opposite"), (3, 0.4, "random"), (3, 0.9, "conflict"), (3, 0.1, "scaled")])
def test_cagrad_weights_solve_the_dual(n_tasks, c, case):
    rng = np.random.default_rng(n_tasks * 10 + int(10 * c))
    grads = rng.normal(size=(n_tasks, 7))
    if case == "opposite":
        grads[1] = -2.0 * grads[0] + 0.1 * grads[1]
    if case == "conflict":
        grads[2] = -grads[0] - grads[1] + 0.2 * grads[2]
    if case == "scaled":
        grads *= np.array([[100.0], [1.0], [0.01]])
    gram = grads @ grads.T
    w = cagrad_dual_weights(gram, c)
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    grid_best = _grid_min(gram, c, 4000 if n_tasks == 2 else 300)
    value = cagrad_objective(w, gram, c)
    scale = float(np.max(np.diag(gram)))
    assert value <= grid_best + 1e-10 * scale  # no grid point beats the solver ...
    assert value >= grid_best - 1e-3 * scale  # ... and the grid gets close to it


@pytest.mark.parametrize("seed", range(2))
def test_cagrad_direction_is_the_conflict_averse_maximiser(seed):
    # Primal problem of CAGrad: max_d min_t g_t . d subject to ||d - g0|| <= c ||g0||.
    # The method's update times (1 + c^2) (its rescaling) must lie on that ball, attain the dual
    # optimum (strong duality) and beat every sampled point of the ball.
    c = 0.4
    model = _mtl(n_tasks=3, seed=seed)
    losses, z = _forward(model, *_data(seed, n_tasks=3))
    shared = list(model.shared_parameters())
    jac = _task_grads(model, losses, shared).double()
    method = build_method({"name": "cagrad", "c": c}, n_tasks=3)
    weights = method.backward(StepContext(model, losses, z))
    d = _flat_grad(shared).double() * (1 + c**2)
    torch.testing.assert_close(weights.double() @ jac * (1 + c**2), d, rtol=1e-4, atol=1e-7)
    g0 = jac.mean(dim=0)
    radius = c * g0.norm()
    assert abs(float((d - g0).norm() - radius)) <= 1e-4 * float(radius)
    worst = float((jac @ d).min())
    gram = (jac @ jac.T).numpy()
    assert worst == pytest.approx(_grid_min(gram, c, 300), rel=2e-3, abs=1e-6 * float(np.max(np.diag(gram))))
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(2000, jac.shape[1], generator=g, dtype=torch.float64)
    samples = g0 + radius * u / u.norm(dim=1, keepdim=True)
    assert float((samples @ jac.T).min(dim=1).values.max()) <= worst + 1e-6 * float(g0.norm() ** 2)


def test_cagrad_with_c_zero_is_the_mean_gradient():
    model = _mtl(n_tasks=3)
    losses, z = _forward(model, *_data(5, n_tasks=3))
    shared = list(model.shared_parameters())
    jac = _task_grads(model, losses, shared)
    build_method({"name": "cagrad", "c": 0.0}, n_tasks=3).backward(StepContext(model, losses, z))
    torch.testing.assert_close(_flat_grad(shared), jac.mean(dim=0), rtol=1e-4, atol=1e-7)


# --------------------------------------------------------------------------- GradNorm


def test_gradnorm_weight_gradient_on_hand_computed_numbers():
    # L/L0 = (0.5, 1) -> r = (2/3, 4/3); G = (2, 1), G_bar = 1.5; targets 1.5 r^1.5 = (0.816, 2.309):
    # task 1 is above its target (+||grad_W L_1|| = +2), task 2 below (-||grad_W L_2|| = -1).
    grad = gradnorm_weight_gradient(
        torch.tensor([1.0, 1.0], dtype=torch.float64),
        torch.tensor([2.0, 1.0], dtype=torch.float64),
        torch.tensor([1.0, 1.0], dtype=torch.float64),
        torch.tensor([2.0, 1.0], dtype=torch.float64),
        alpha=1.5,
    )
    torch.testing.assert_close(grad, torch.tensor([2.0, -1.0], dtype=torch.float64))


def _gradnorm_reference(w: np.ndarray, norms: np.ndarray, losses: np.ndarray, initial: np.ndarray, alpha: float, lr: float) -> np.ndarray:
    """One SGD step of Chen et al.'s update followed by renormalisation to sum T."""
    g = w * norms
    ratio = losses / initial
    target = g.mean() * (ratio / ratio.mean()) ** alpha
    new = w - lr * np.sign(g - target) * norms
    return len(w) * new / new.sum()


def test_gradnorm_updates_follow_the_published_formula_over_a_loss_history():
    model = _mtl(n_tasks=3)
    method = build_method({"name": "gradnorm", "alpha": 1.5, "lr": 0.05, "optimizer": "sgd"}, n_tasks=3)
    last_weight = model.encoder[2].weight  # the encoder's last linear layer
    w = np.ones(3)
    initial = None
    for step in range(4):
        model.zero_grad()
        losses, z = _forward(model, *_data(10 + step, n_tasks=3))
        norms = _task_grads(model, losses, [last_weight]).norm(dim=1).double().numpy()
        full = _task_grads(model, losses, list(model.parameters()))
        loss_np = losses.detach().double().numpy()
        initial = loss_np if initial is None else initial
        used = method.backward(StepContext(model, losses, z, step=step))
        np.testing.assert_allclose(used.numpy(), w, rtol=1e-6)
        # the model trains on sum_t w_t L_t with the weights of this step
        torch.testing.assert_close(_flat_grad(model.parameters()), used @ full, rtol=1e-4, atol=1e-6)
        w = _gradnorm_reference(w, norms, loss_np, initial, 1.5, 0.05)
        np.testing.assert_allclose(method.weights.detach().numpy(), w, rtol=1e-5)
        assert float(method.weights.detach().sum()) == pytest.approx(3.0)
        with torch.no_grad():  # move the model so the loss ratios change
            for p in model.parameters():
                p -= 0.1 * p.grad


# --------------------------------------------------------------------------- DWA


def test_dwa_weights_follow_the_loss_ratio_softmax():
    method = build_method({"name": "dwa", "temperature": 2.0}, n_tasks=3)
    history = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 1.5, 3.3]), torch.tensor([0.45, 0.9, 3.0]), torch.tensor([0.4, 0.8, 2.0])]
    model = _mtl(n_tasks=3)
    for epoch in range(2):  # no ratio yet: equal weights
        losses, z = _forward(model, *_data(epoch, n_tasks=3))
        torch.testing.assert_close(method.backward(StepContext(model, losses, z, epoch=epoch)), torch.ones(3))
        method.end_epoch(epoch, history[epoch])
    for epoch in (2, 3):
        r = (history[epoch - 1] / history[epoch - 2]).double()
        expected = 3 * torch.exp(r / 2.0) / torch.exp(r / 2.0).sum()
        model.zero_grad()
        losses, z = _forward(model, *_data(epoch, n_tasks=3))
        full = _task_grads(model, losses, list(model.parameters()))
        weights = method.backward(StepContext(model, losses, z, epoch=epoch))
        torch.testing.assert_close(weights.double(), expected)
        torch.testing.assert_close(_flat_grad(model.parameters()), weights @ full, rtol=1e-4, atol=1e-6)
        method.end_epoch(epoch, history[epoch])
    torch.testing.assert_close(dwa_weights(torch.tensor([2.0, 2.0]), torch.tensor([1.0, 1.0]), 2.0), torch.ones(2))


# --------------------------------------------------------------------------- Uncertainty


@pytest.mark.parametrize("form,scale", [("classification", 1.0), ("regression", 0.5)])
def test_uncertainty_log_variance_gradient_is_closed_form(form, scale):
    model = _mtl(n_tasks=2)
    method = build_method({"name": "uncertainty", "form": form}, n_tasks=2)
    (s,) = method.parameters()
    with torch.no_grad():
        s.copy_(torch.tensor([0.3, -0.7]))
    losses, z = _forward(model, *_data(3))
    full = _task_grads(model, losses, list(model.parameters()))
    weights = method.backward(StepContext(model, losses, z))
    L = losses.detach()
    # d/ds [scale (e^-s L + s)] = scale (1 - e^-s L)
    torch.testing.assert_close(s.grad, scale * (1 - torch.exp(-s.detach()) * L))
    torch.testing.assert_close(weights, scale * torch.exp(-s.detach()))
    torch.testing.assert_close(_flat_grad(model.parameters()), weights @ full, rtol=1e-4, atol=1e-6)


def test_uncertainty_log_variances_are_trained_by_the_optimiser():
    model = _mtl()
    method = build_method({"name": "uncertainty"}, n_tasks=2)
    optimizer = torch.optim.SGD(list(model.parameters()) + method.parameters(), lr=0.1)
    before = method.parameters()[0].detach().clone()
    losses, z = _forward(model, *_data(0))
    method.backward(StepContext(model, losses, z))
    optimizer.step()
    assert not torch.equal(method.parameters()[0].detach(), before)


# --------------------------------------------------------------------------- RLW


def _rlw_draws(seed: int, n: int = 5) -> list[torch.Tensor]:
    model = _mtl(n_tasks=3)
    method = build_method({"name": "rlw", "seed": seed}, n_tasks=3)
    out = []
    for step in range(n):
        model.zero_grad()
        losses, z = _forward(model, *_data(step, n_tasks=3))
        out.append(method.backward(StepContext(model, losses, z, step=step)))
    return out


def test_rlw_weights_are_random_points_of_the_simplex_reproducible_by_seed():
    a, b, c = _rlw_draws(7), _rlw_draws(7), _rlw_draws(8)
    for w in a:
        assert torch.all(w > 0) and float(w.sum()) == pytest.approx(1.0)
    assert all(not torch.allclose(a[i], a[i + 1]) for i in range(len(a) - 1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.allclose(x, y) for x, y in zip(a, c))


def test_rlw_default_seed_is_the_runs_seed():
    torch.manual_seed(11)
    first = build_method({"name": "rlw"}, n_tasks=3).draw()
    torch.manual_seed(11)
    again = build_method({"name": "rlw"}, n_tasks=3).draw()
    torch.manual_seed(12)
    other = build_method({"name": "rlw"}, n_tasks=3).draw()
    assert torch.equal(first, again) and not torch.equal(first, other)


# --------------------------------------------------------------------------- GradDrop


def test_graddrop_mask_on_a_hand_constructed_gradient_matrix():
    stats = torch.tensor([[1.0, -1.0, 2.0], [1.0, 3.0, -2.0]])
    # purity per column: 1 (all positive), 0.75, 0.5 (balanced)
    uniform = torch.tensor([0.3, 0.8, 0.4])
    # col 0: P > U, keep positives; col 1: P < U, keep negatives; col 2: P > U, keep positives
    expected = torch.tensor([[True, True, True], [True, False, False]])
    assert torch.equal(graddrop_mask(stats, uniform), expected)


def test_graddrop_keeps_everything_when_tasks_agree_in_sign():
    g = torch.Generator().manual_seed(0)
    magnitudes = torch.rand(3, 50, generator=g) + 0.1
    signs = torch.where(torch.rand(50, generator=g) > 0.5, 1.0, -1.0)
    stats = magnitudes * signs  # every column has one sign for all tasks: purity 1 or 0
    for _ in range(5):
        assert graddrop_mask(stats, torch.rand(50, generator=g) * 0.98 + 0.01).all()
    # purity extremes: P = 1 keeps positives for every U < 1, P = 0 keeps negatives for every U > 0
    assert graddrop_mask(torch.tensor([[1.0], [2.0]]), torch.tensor([0.999])).all()
    assert graddrop_mask(torch.tensor([[-1.0], [-2.0]]), torch.tensor([0.001])).all()
    # and a conflicting element keeps exactly one sign
    mask = graddrop_mask(torch.tensor([[1.0], [-1.0]]), torch.tensor([0.2]))
    assert mask.sum() == 1 and bool(mask[0, 0])


def test_graddrop_without_conflict_or_with_full_leak_is_the_plain_sum():
    for shared_heads, leak in ((True, 0.0), (False, 1.0)):
        model = _mtl(shared_heads=shared_heads)
        x, y = _data(4)
        if shared_heads:
            y[:, 1] = y[:, 0]
        losses, z = _forward(model, x, y)
        reference = _task_grads(model, losses, list(model.parameters())).sum(dim=0)
        build_method({"name": "graddrop", "leak": leak, "seed": 0}, n_tasks=2).backward(StepContext(model, losses, z))
        torch.testing.assert_close(_flat_grad(model.parameters()), reference, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("input_sign,sum_batch", [(True, True), (False, False)])
def test_graddrop_backpropagates_its_masked_feature_gradient_through_the_encoder(input_sign, sum_batch):
    model = _mtl(shared_heads=False)
    losses, z = _forward(model, *_data(6))
    jz = _task_grads(model, losses, [z])
    options = {"name": "graddrop", "seed": 9, "input_sign": input_sign, "sum_batch": sum_batch}
    twin = build_method(options, n_tasks=2)  # same seed: draws the same uniforms
    feature_grad = twin.feature_gradient(jz, z)
    # every element of the new z-gradient is the sum over a subset of the tasks
    t0, t1 = jz.view(2, *z.shape)
    choices = torch.stack([torch.zeros_like(t0), t0, t1, t0 + t1])
    assert ((choices - feature_grad).abs().min(dim=0).values <= 1e-7).all()
    if sum_batch:  # one keep decision per feature, shared by the whole batch
        same_subset_for_every_row = ((choices - feature_grad).abs() <= 1e-7).all(dim=1)
        assert same_subset_for_every_row.any(dim=0).all()
    encoder = list(model.shared_parameters())
    expected = torch.autograd.grad(z, encoder, grad_outputs=feature_grad, retain_graph=True)
    heads = torch.autograd.grad(losses.sum(), list(model.task_parameters()), retain_graph=True)
    build_method(options, n_tasks=2).backward(StepContext(model, losses, z))
    for p, e in zip(encoder, expected):
        torch.testing.assert_close(p.grad, e)
    for p, e in zip(model.task_parameters(), heads):
        torch.testing.assert_close(p.grad, e)


# --------------------------------------------------------------------------- Pareto MTL


class _Point(nn.Module):
    """The 'encoder' of the synthetic problem: the decision vector itself."""

    def __init__(self, x0: torch.Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(x0)

    def forward(self, inputs) -> torch.Tensor:
        return self.x.unsqueeze(0)


class _Fonseca(nn.Module):
    """f(x) = 1 - exp(-||x - sign/sqrt(d)||^2), the synthetic problem of the Pareto MTL paper."""

    def __init__(self, sign: float, dim: int) -> None:
        super().__init__()
        self.center = sign / math.sqrt(dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 1 - torch.exp(-((z - self.center) ** 2).sum(dim=-1))


def test_pareto_mtl_solutions_land_in_their_sectors_on_the_pareto_front():
    dim, steps = 20, 150
    units = torch.tensor(PREFS, dtype=torch.float64)
    units = units / units.norm(dim=1, keepdim=True)
    # The front is {x_1 = ... = x_d = a / sqrt(d)}, a in [-1, 1]: f = (1 - e^{-(a-1)^2}, 1 - e^{-(a+1)^2}).
    a = torch.linspace(-1, 1, 20001, dtype=torch.float64)
    front = torch.stack([1 - torch.exp(-((a - 1) ** 2)), 1 - torch.exp(-((a + 1) ** 2))], dim=1)
    for j, pref in enumerate(PREFS):
        x0 = torch.rand(dim, generator=torch.Generator().manual_seed(j), dtype=torch.float64) - 0.5
        model = HardSharing(_Point(x0), [_Fonseca(1.0, dim), _Fonseca(-1.0, dim)])
        method = build_method({"name": "pareto_mtl", "init_steps": 40}, n_tasks=2, preference=pref, preference_set=PREFS)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        for step in range(steps):
            optimizer.zero_grad()
            z = model.encode(None)
            losses = torch.stack([o.squeeze(0) for o in model.decode(z)])
            method.backward(StepContext(model, losses, z, step=step))
            optimizer.step()
        with torch.no_grad():
            f = torch.stack([o.squeeze(0) for o in model(None)])
        cosines = units @ f / f.norm()
        assert int(cosines.argmax()) == j, f"preference {pref}: losses {f.tolist()} left its sector"
        assert float((front - f).norm(dim=1).min()) < 1e-3, f"preference {pref}: {f.tolist()} is not on the front"


def _brute_force_min_norm(vectors: np.ndarray, k: int = 400) -> np.ndarray:
    """Min-norm convex combination of three vectors by enumeration of a simplex grid."""
    w = _simplex_grid(3, k)
    combos = w @ vectors
    return w[int(np.argmin((combos**2).sum(axis=1)))]


def test_pareto_mtl_phase_two_maps_constraint_weights_to_task_weights():
    prefs = [(0.2, 0.8), (0.5, 0.5), (0.8, 0.2)]
    u = np.array(prefs) / np.linalg.norm(prefs, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(2, 6))
    losses = np.array([1.0, 0.3])  # more aligned with u_2 than with u_1: the constraint of k = 2 is active
    g = (u - u[1]) @ (losses / np.linalg.norm(losses))
    assert g[2] > 0 and g[0] < 0
    method = build_method({"name": "pareto_mtl", "init_steps": 0}, n_tasks=2, preference=prefs[1], preference_set=prefs)
    weights = method.weights_for(torch.tensor(losses), torch.tensor(grads @ grads.T)).numpy()
    direction = u[2] - u[1]
    sol = _brute_force_min_norm(np.vstack([grads, direction @ grads]))
    expected = sol[:2] + sol[2] * direction
    expected = 2 * expected / np.abs(expected).sum()
    np.testing.assert_allclose(weights, expected, atol=2e-2)
    assert abs(np.abs(weights).sum() - 2) < 1e-12


def test_pareto_mtl_phase_one_descends_on_the_violated_constraint_then_stops():
    prefs = [(0.2, 0.8), (0.5, 0.5), (0.8, 0.2)]
    u = torch.tensor(prefs, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    method = build_method({"name": "pareto_mtl", "init_steps": 5}, n_tasks=2, preference=prefs[1], preference_set=prefs)
    gram = torch.eye(2, dtype=torch.float64)
    # One violated constraint (k = 2): the weights are its gradient's coefficients u_2 - u_1, unscaled.
    torch.testing.assert_close(method.weights_for(torch.tensor([1.0, 0.3]), gram), u[2] - u[1])
    assert not method.phase1_done
    # Feasible: phase 1 ends for good, and phase 2 is MGDA over the tasks (no active constraint).
    weights = method.weights_for(torch.tensor([0.7, 0.7]), gram)
    assert method.phase1_done
    torch.testing.assert_close(weights, torch.tensor([1.0, 1.0], dtype=torch.float64))


# --------------------------------------------------------------------------- all baselines


@pytest.mark.parametrize("name", BASELINES)
def test_state_dict_round_trip_reproduces_the_next_step(name):
    # Three tasks, so that PCGrad's visiting order (generator state) matters.
    model = _mtl(n_tasks=3)
    spec = {"name": name, **_options(name)}
    torch.manual_seed(0)
    method = build_method(spec, n_tasks=3, **_kwargs(name, 3))
    optimizer = torch.optim.SGD(list(model.parameters()) + method.parameters(), lr=0.05)
    for step in range(3):
        optimizer.zero_grad()
        losses, z = _forward(model, *_data(step, n_tasks=3))
        method.backward(StepContext(model, losses, z, step=step, epoch=step))
        optimizer.step()
        method.end_epoch(step, losses.detach() * (1 + 0.1 * step))
    buffer = io.BytesIO()  # through a checkpoint file, as the trainer does
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)  # the restored run must not depend on the global stream
    restored = build_method(spec, n_tasks=3, **_kwargs(name, 3))
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    results = []
    for m in (method, restored):
        twin = copy.deepcopy(model)
        losses, z = _forward(twin, *_data(99, n_tasks=3))
        weights = m.backward(StepContext(twin, losses, z, step=3, epoch=3))
        results.append((weights, _flat_grad(twin.parameters())))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


@pytest.mark.parametrize(
    "name,option,value",
    [
        ("uncertainty", "form", "gaussian"),
        ("gradnorm", "alpha", -1.0),
        ("gradnorm", "lr", 0.0),
        ("gradnorm", "optimizer", "rmsprop"),
        ("dwa", "temperature", 0.0),
        ("rlw", "seed", -3),
        ("pcgrad", "reduction", "max"),
        ("cagrad", "c", -0.1),
        ("cagrad", "rescale", 3),
        ("graddrop", "leak", 1.5),
        ("graddrop", "sum_batch", "yes"),
        ("pareto_mtl", "init_steps", 2.5),
        ("pareto_mtl", "eps", -1.0),
    ],
)
def test_invalid_options_raise_config_errors_naming_the_option(name, option, value):
    with pytest.raises(ConfigError, match=option):
        build_method({"name": name, option: value}, n_tasks=2, **_kwargs(name))


def test_pareto_mtl_rejects_a_preference_outside_its_grid():
    with pytest.raises(ConfigError, match="preference_set"):
        build_method({"name": "pareto_mtl"}, n_tasks=2, preference=(0.3, 0.7), preference_set=PREFS)


def test_every_baseline_is_registered_with_a_label():
    for name in BASELINES:
        assert name in METHODS and METHODS.get(name).label
    assert METHODS.get("pareto_mtl").sweep == "preferences"
