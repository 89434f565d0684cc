"""GradNorm: against an independent reference (a hand-written formula, a brute-force solve, or the problem's known optimum)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlpareto.methods import StepContext, build_method
from mtlpareto.methods.gradnorm import gradnorm_weight_gradient

from method_helpers import _mtl, _forward, _data, _task_grads, _flat_grad


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
