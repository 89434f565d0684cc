"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018): balance gradient norms.

Task weights w_t (initially 1) scale the losses, sum_t w_t L_t. Each step, with W the last
shared layer's weights (here: the last encoder parameter tensor with >= 2 dimensions, i.e. the
weight of the encoder's last linear/conv layer),

    G_t = ||grad_W (w_t L_t)|| = w_t ||grad_W L_t||,   G_bar = mean_t G_t,
    r_t = (L_t / L_t(0)) / mean_s (L_s / L_s(0))      (inverse training rate; L_t(0): first step),
    L_grad = sum_t |G_t - G_bar r_t^alpha|            (the target G_bar r_t^alpha held constant),

and w takes one step of its own optimiser on dL_grad/dw_t = sign(G_t - target_t) ||grad_W L_t||,
then is renormalised to sum_t w_t = T. The model's gradient uses the weights before that step.
The paper trains w with the network's optimiser and does not give its learning rate; we give
w its own optimiser (default Adam, lr 0.025, no weight decay) so it neither inherits weight
decay nor depends on the model's learning-rate schedule.
"""

from __future__ import annotations

import torch

from mtlpareto.errors import ConfigError, TrainingError
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, StepContext, check_number

OPTIMIZERS = ("adam", "sgd")
# Weights are kept at least this large before renormalising: a weight pushed to <= 0 would
# turn a task's descent into ascent (the paper does not discuss this case).
_MIN_WEIGHT = 1e-6


def gradnorm_weight_gradient(weights: torch.Tensor, grad_norms: torch.Tensor, losses: torch.Tensor, initial_losses: torch.Tensor, alpha: float) -> torch.Tensor:
    """dL_grad/dw [T] from w, ||grad_W L_t||, L_t and L_t(0) (all [T])."""
    w = weights.detach().clone().requires_grad_(True)
    g = w * grad_norms
    ratio = losses / initial_losses
    target = (g.mean() * (ratio / ratio.mean()) ** alpha).detach()
    (grad,) = torch.autograd.grad((g - target).abs().sum(), w)
    return grad


def last_shared_weight(ctx: StepContext) -> torch.Tensor:
    candidates = [p for p in ctx.shared_params if p.dim() >= 2]
    if not candidates:
        raise ConfigError("gradnorm needs a shared layer with a weight matrix (an encoder parameter with >= 2 dimensions)")
    return candidates[-1]


@METHODS.register("gradnorm")
class GradNorm(Method):
    label = "GradNorm"

    def __init__(self, n_tasks: int, preference=None, task=None, alpha: float = 1.5, lr: float = 0.025, optimizer: str = "adam") -> None:
        super().__init__(n_tasks, preference, task)
        self.alpha = float(check_number(alpha, "alpha", "gradnorm", low=0.0))
        lr = float(check_number(lr, "lr", "gradnorm", low=0.0, low_open=True))
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"gradnorm: option optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        self.weights = torch.ones(n_tasks, dtype=torch.float64, requires_grad=True)
        self.initial_losses: torch.Tensor | None = None
        opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        self.optimizer = opt_cls([self.weights], lr=lr)

    def backward(self, ctx: StepContext) -> torch.Tensor:
        losses = ctx.losses.detach().to("cpu", torch.float64)
        if self.initial_losses is None:
            self.initial_losses = losses.clone()
        used = self.weights.detach().clone()
        # Before the weighted backward, which frees the graph; backprop stops at W.
        grad_norms = ctx.parameter_jacobian([last_shared_weight(ctx)]).detach().to("cpu", torch.float64).norm(dim=1)
        ctx.backward_weighted(used)
        self.optimizer.zero_grad()
        grad = gradnorm_weight_gradient(used, grad_norms, losses, self.initial_losses, self.alpha)
        if not bool(torch.isfinite(grad).all()):
            # e.g. a task whose first loss was 0: its training rate L_t / L_t(0) is undefined
            raise TrainingError(f"gradnorm: non-finite weight gradient (losses {losses.tolist()}, initial losses {self.initial_losses.tolist()})")
        self.weights.grad = grad
        self.optimizer.step()
        with torch.no_grad():
            self.weights.clamp_(min=_MIN_WEIGHT)
            self.weights.mul_(self.n_tasks / self.weights.sum())
        return used.float()

    def state_dict(self) -> dict:
        return {
            "weights": self.weights.detach().clone(),
            "initial_losses": None if self.initial_losses is None else self.initial_losses.clone(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.weights.copy_(state["weights"])  # in place: the optimiser holds this tensor
        self.initial_losses = None if state["initial_losses"] is None else state["initial_losses"].clone()
        self.optimizer.load_state_dict(state["optimizer"])
