"""Uncertainty: against an independent reference (a hand-written formula, a brute-force solve, or the problem's known optimum)."""

from __future__ import annotations

import pytest
import torch

from mtlpareto.methods import StepContext, build_method

from method_helpers import _mtl, _forward, _data, _task_grads, _flat_grad


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
