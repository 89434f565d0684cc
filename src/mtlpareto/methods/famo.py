"""FAMO (Liu, Liu, Stone & Liu, NeurIPS 2023): fast adaptive multitask optimisation.

Task logits xi (weights z = softmax(xi)) steer the update of sum_t z_t log(L_t - L*_t) / c,
c = sum_t z_t / (L_t - L*_t), so every step costs one backward: its loss weights are
w_t = z_t / (c (L_t - L*_t)), summing to 1.  After the parameter step the logits take one step
of their own optimiser (Adam, lr `w_lr`, weight decay `gamma`) along the gradient of
softmax(xi) weighted by each task's log-loss decrease, measured, as in the official code, by
evaluating the same batch again after the step (`after_step`).  L*_t is the loss lower bound
(0 for cross-entropy, the default).
"""

from __future__ import annotations

import torch

from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, StepContext, check_number

_EPS = 1e-8  # the official code's floor inside the logarithms


@METHODS.register("famo")
class FAMO(Method):
    label = "FAMO"
    needs_losses_after_step = True

    def __init__(self, n_tasks: int, preference=None, task=None, gamma: float = 0.01, w_lr: float = 0.025) -> None:
        super().__init__(n_tasks, preference, task)
        self.gamma = float(check_number(gamma, "gamma", "famo", low=0.0))
        self.w_lr = float(check_number(w_lr, "w_lr", "famo", low=0.0, low_open=True))
        self.logits = torch.zeros(n_tasks, dtype=torch.float64, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.logits], lr=self.w_lr, weight_decay=self.gamma)
        self.min_losses = torch.zeros(n_tasks, dtype=torch.float64)
        self.previous: torch.Tensor | None = None

    def loss_weights(self, losses: torch.Tensor) -> torch.Tensor:
        """w_t = z_t / (c D_t): the gradient of sum_t z_t log D_t / c is sum_t w_t grad L_t."""
        z = torch.softmax(self.logits.detach(), dim=0)
        inverse = z / (losses.detach().to("cpu", torch.float64) - self.min_losses + _EPS)
        return inverse / inverse.sum()

    def backward(self, ctx: StepContext) -> torch.Tensor:
        self.previous = ctx.losses.detach().to("cpu", torch.float64)
        weights = self.loss_weights(ctx.losses).float()
        ctx.backward_weighted(weights)
        return weights

    def after_step(self, losses: torch.Tensor) -> None:
        """The batch's task losses after the parameter step: one step of the logits."""
        if self.previous is None:
            return
        now = losses.detach().to("cpu", torch.float64)
        delta = torch.log(self.previous - self.min_losses + _EPS) - torch.log(now - self.min_losses + _EPS)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(torch.softmax(self.logits, dim=0), self.logits, grad_outputs=delta)
        self.optimizer.zero_grad()
        self.logits.grad = grad
        self.optimizer.step()
        self.previous = None

    def state_dict(self) -> dict:
        return {"logits": self.logits.detach().clone(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.logits.copy_(state["logits"])  # in place: the optimiser holds this tensor
        self.optimizer.load_state_dict(state["optimizer"])
