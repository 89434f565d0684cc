"""CAGrad: against an independent reference (a hand-written formula, a brute-force solve, or the problem's known optimum)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtlpareto.methods import StepContext, build_method
from mtlpareto.methods.cagrad import cagrad_dual_weights, cagrad_objective, cagrad_task_weights

from method_helpers import _simplex_grid, _mtl, _forward, _data, _task_grads, _flat_grad


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


def _primal_reference(g: np.ndarray, c: float) -> tuple[float, float]:
    """Independent convex solve in parameter space (SLSQP): the best worst-task improvement
    max_{||d - g0|| <= c ||g0||} min_t g_t . d, then the smallest ||d - g0|| attaining it."""
    import scipy.optimize

    g0 = g.mean(axis=0)
    r2 = (c * np.linalg.norm(g0)) ** 2
    ball = {"type": "ineq", "fun": lambda v: r2 - np.sum((v[:-1] - g0) ** 2)}
    tasks = {"type": "ineq", "fun": lambda v: g @ v[:-1] - v[-1]}
    best = max(
        (scipy.optimize.minimize(lambda v: -v[-1], np.append(g0 + 0.1 * start, 0.0), constraints=[ball, tasks], method="SLSQP", options={"ftol": 1e-12, "maxiter": 500}) for start in np.eye(g.shape[1])),
        key=lambda r: -r.fun,
    )
    value = -best.fun
    keep = {"type": "ineq", "fun": lambda d: g @ d - value}
    closest = scipy.optimize.minimize(lambda d: np.sum((d - g0) ** 2), g0, constraints=[keep], method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    return value, float(np.sqrt(closest.fun))


@pytest.mark.parametrize("k, degenerate", [(1.0, True), (2.0, True), (5.0, False)])
def test_cagrad_with_zero_in_the_hull_matches_the_primal_optimum(k, degenerate):
    """Rows g, -k g, h: 0 is in the hull. With k = 1, 2 (and c = 0.8) the best worst-task
    improvement is 0 and CAGrad's dual optimum has g_w = 0: the direction must harm no task,
    while the mean gradient (the former fallback) raises task 1's loss when k > 1.  With k = 5 the
    trust region is too small for that and the optimum is negative (the regular formula)."""
    g = np.array([[1.0, 0.5, 0.0], [-k * 1.0, -k * 0.5, 0.0], [0.2, -0.3, 1.0]])
    c = 0.8
    d = cagrad_task_weights(g @ g.T, c, rescale=0) @ g
    value, distance = _primal_reference(g, c)
    assert np.linalg.norm(d - g.mean(axis=0)) <= c * np.linalg.norm(g.mean(axis=0)) * (1 + 1e-9)
    assert (g @ d).min() == pytest.approx(value, abs=1e-6)
    if degenerate:
        assert value == pytest.approx(0.0, abs=1e-6) and (g @ d >= -1e-9).all()
        assert np.linalg.norm(d - g.mean(axis=0)) == pytest.approx(distance, abs=1e-5)
        if k > 1:
            assert (g @ g.mean(axis=0)).min() < -1e-3
    else:
        assert value < -1e-3
