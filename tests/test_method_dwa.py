"""DWA: against an independent reference (a hand-written formula, a brute-force solve, or the problem's known optimum)."""

from __future__ import annotations

import torch

from mtlpareto.methods import StepContext, build_method
from mtlpareto.methods.dwa import dwa_weights

from method_helpers import _mtl, _forward, _data, _task_grads, _flat_grad


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
