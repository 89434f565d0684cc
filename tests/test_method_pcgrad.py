"""PCGrad: against an independent reference (a hand-written formula, a brute-force solve, or the problem's known optimum)."""

from __future__ import annotations

import pytest
import torch

from mtlpareto.methods import StepContext, build_method
from mtlpareto.methods.pcgrad import project_conflicting

from method_helpers import _mtl, _forward, _data, _task_grads, _flat_grad


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
