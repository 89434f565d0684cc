"""Pareto MTL: against an independent reference (a hand-written formula, a brute-force solve, or the problem's known optimum)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mtlpareto.methods import StepContext, build_method
from mtlpareto.models import HardSharing

from method_helpers import PREFS, _simplex_grid


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
