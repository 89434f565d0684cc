"""CAGrad: against an independent reference (a hand-written formula, a brute-force solve, or the problem's known optimum)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtlpareto.methods import StepContext, build_method
from mtlpareto.methods.cagrad import cagrad_dual_weights, cagrad_objective

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
