"""FAMO: the loss weights and the logits' update, by hand."""

from __future__ import annotations

import pytest
import torch

from mtlpareto.methods import build_method


def test_loss_weights_are_the_gradient_of_the_log_objective():
    method = build_method({"name": "famo"}, 3)
    with torch.no_grad():
        method.logits.copy_(torch.tensor([0.2, -0.1, 0.4], dtype=torch.float64))
    losses = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64, requires_grad=True)
    z = torch.softmax(method.logits.detach(), 0)
    c = (z / losses).sum().detach()
    (expected,) = torch.autograd.grad((z * losses.log() / c).sum(), losses)
    torch.testing.assert_close(method.loss_weights(losses), expected)
    assert float(method.loss_weights(losses).sum()) == pytest.approx(1.0)


def test_the_logits_step_along_the_softmax_jacobian_times_the_log_decrease():
    method = build_method({"name": "famo", "w_lr": 0.1, "gamma": 0.0}, 2)
    method.previous = torch.tensor([1.0, 1.0], dtype=torch.float64)
    method.after_step(torch.tensor([0.5, 0.9], dtype=torch.float64))
    z = torch.full((2,), 0.5, dtype=torch.float64)
    delta = torch.log(torch.tensor([1.0, 1.0])) - torch.log(torch.tensor([0.5, 0.9], dtype=torch.float64))
    grad = (torch.diag(z) - torch.outer(z, z)) @ delta
    # Adam's first step moves each logit by lr against the sign of its gradient.
    torch.testing.assert_close(method.logits.detach(), -0.1 * torch.sign(grad), atol=1e-6, rtol=0)
    # The task whose loss fell less (task 1) gains weight.
    assert float(torch.softmax(method.logits.detach(), 0)[1]) > 0.5
