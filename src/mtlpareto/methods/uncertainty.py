"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018): learned homoscedastic task noise.

Each task has a learned log-variance s_t = log sigma_t^2 (an nn.Parameter the optimiser trains
with the model). Objective, by `form`:

* "classification" (default; the paper's Eq. 10 for a softmax likelihood with the usual
  approximation, and the form of the authors' and most public code):
  sum_t exp(-s_t) L_t + s_t,  so  dJ/ds_t = 1 - exp(-s_t) L_t.
* "regression" (the paper's Eq. 7 for a Gaussian likelihood, 1/(2 sigma^2) L + log sigma):
  sum_t 0.5 exp(-s_t) L_t + 0.5 s_t.

The full objective is backpropagated once, so the model and s_t get their gradients together.
"""

from __future__ import annotations

import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, StepContext, check_number

FORMS = ("classification", "regression")


@METHODS.register("uncertainty")
class Uncertainty(Method):
    label = "Uncertainty weighting"

    def __init__(self, n_tasks: int, preference=None, task=None, form: str = "classification", init_log_variance: float = 0.0) -> None:
        super().__init__(n_tasks, preference, task)
        if form not in FORMS:
            raise ConfigError(f"uncertainty: option form must be one of {', '.join(FORMS)}, got {form!r}")
        check_number(init_log_variance, "init_log_variance", "uncertainty")
        self.form = form
        self.log_vars = nn.Parameter(torch.full((n_tasks,), float(init_log_variance)))

    def parameters(self) -> list[nn.Parameter]:
        return [self.log_vars]

    def backward(self, ctx: StepContext) -> torch.Tensor:
        # .to() is differentiable, so s_t stays a leaf on its own device when the model is on a GPU.
        s = self.log_vars.to(ctx.losses)
        scale = 1.0 if self.form == "classification" else 0.5
        precision = scale * torch.exp(-s)
        (precision * ctx.losses + scale * s).sum().backward()
        return precision.detach()

    def state_dict(self) -> dict:
        return {"log_vars": self.log_vars.detach().clone()}

    def load_state_dict(self, state: dict) -> None:
        # In place: the optimiser holds a reference to this very Parameter.
        with torch.no_grad():
            self.log_vars.copy_(state["log_vars"])
