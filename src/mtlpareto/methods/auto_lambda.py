"""Auto-Lambda (Liu, Johns & Davison, TMLR 2022): task weights learned by meta-gradients.

The weights lambda are trained so that one step on sum_t lambda_t L_t(train) lowers the primary
tasks' validation loss.  Each step (before the network's own update, as the reference code):

1. virtual step  theta' = theta - alpha grad_theta sum_t lambda_t L_t(theta; train batch)
   (alpha: the optimiser's current learning rate, or `virtual_lr`);
2. d = grad_theta' sum_{t in primary} L_t(theta'; validation batch);
3. the hypergradient through the virtual step, d/dlambda_t L_val(theta') =
   -alpha d^T grad_theta L_t(theta), by central finite differences (DARTS' approximation):
   -alpha (L_t(theta + e d) - L_t(theta - e d)) / (2 e), e = 0.01 / ||d||;
4. one Adam step (lr `meta_lr`) on lambda; the network then takes its step on
   sum_t lambda_t L_t with the updated weights.

theta is the network's shared and task parameters (MTLModel interface), so Auto-Lambda runs on
every architecture, MPPS included (its recomputed losses reuse the step's masks).  The extra
forwards run in training mode on copies of the BatchNorm statistics.  Weights start at `weight_init` (the reference's 0.1) and are not clipped, as there.
`primary`: indices of the primary tasks (null: every task, the "total" setting of MPPS Table 5).
"""

from __future__ import annotations

import torch

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, StepContext, check_number

FD_RADIUS = 0.01  # the finite-difference step, over ||d|| (the reference's and DARTS' value)


@METHODS.register("auto_lambda")
class AutoLambda(Method):
    label = "Auto-λ"
    needs_validation_batches = True

    def __init__(self, n_tasks: int, preference=None, task=None, weight_init: float = 0.1, meta_lr: float = 1e-4, primary: list[int] | None = None, virtual_lr: float | None = None) -> None:
        super().__init__(n_tasks, preference, task)
        self.weight_init = float(check_number(weight_init, "weight_init", "auto_lambda", low=0.0, low_open=True))
        self.meta_lr = float(check_number(meta_lr, "meta_lr", "auto_lambda", low=0.0, low_open=True))
        if virtual_lr is not None:
            check_number(virtual_lr, "virtual_lr", "auto_lambda", low=0.0, low_open=True)
        self.virtual_lr = virtual_lr
        if primary is None:
            primary = list(range(n_tasks))
        if not isinstance(primary, list) or not primary or len(set(primary)) != len(primary) or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n_tasks for i in primary):
            raise ConfigError(f"auto_lambda: option primary must be a non-empty list of distinct task indices in [0, {n_tasks - 1}] or null, got {primary!r}")
        self.primary = primary
        self.weights = torch.full((n_tasks,), self.weight_init, dtype=torch.float32, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.weights], lr=self.meta_lr)
        self.lr: float | None = None

    def start_epoch(self, epoch: int, lr: float) -> None:
        self.lr = lr

    def hypergradient(self, ctx: StepContext) -> torch.Tensor:
        """d L_val(theta') / d lambda [T] (steps 1-3 of the module docstring).

        The virtual and perturbed parameters are passed to the forward passes as substitutes
        (torch.func.functional_call), never written into the model: the step's graph stays valid
        for the network's own backward, and BatchNorm statistics move only in copies."""
        if ctx.validation_losses is None or ctx.recompute_losses is None:
            raise ConfigError("auto_lambda needs validation batches during training (the learner sets StepContext.validation_losses)")
        alpha = self.virtual_lr if self.virtual_lr is not None else self.lr
        if alpha is None:
            raise ConfigError("auto_lambda: no learning rate for the virtual step (set virtual_lr, or train through the training loop)")
        params = ctx.shared_params + ctx.task_params
        names = {id(p): n for n, p in ctx.model.named_parameters()}
        keys = [names[id(p)] for p in params]

        def with_buffers(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {**{n: b.detach().clone() for n, b in ctx.model.named_buffers()}, **values}

        weights = self.weights.detach().to(ctx.losses)
        grads = torch.autograd.grad((weights * ctx.losses).sum(), params, retain_graph=True, allow_unused=True)
        virtual = [(p.detach() - alpha * g if g is not None else p.detach()).requires_grad_(True) for p, g in zip(params, grads)]
        val = ctx.validation_losses(with_buffers(dict(zip(keys, virtual))))[self.primary].sum()
        d = torch.autograd.grad(val, virtual, allow_unused=True)
        d = [torch.zeros_like(v) if g is None else g.detach() for v, g in zip(virtual, d)]
        norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in d)))
        if norm == 0.0:  # the validation loss is flat in theta: no signal for lambda
            return torch.zeros(self.n_tasks)
        radius = FD_RADIUS / norm
        with torch.no_grad():
            plus = ctx.recompute_losses(with_buffers({k: p.detach() + radius * g for k, p, g in zip(keys, params, d)}))
            minus = ctx.recompute_losses(with_buffers({k: p.detach() - radius * g for k, p, g in zip(keys, params, d)}))
        return (-alpha * (plus - minus) / (2.0 * radius)).float().cpu()

    def backward(self, ctx: StepContext) -> torch.Tensor:
        grad = self.hypergradient(ctx)
        self.optimizer.zero_grad()
        self.weights.grad = grad
        self.optimizer.step()
        weights = self.weights.detach().clone()
        ctx.backward_weighted(weights)
        return weights

    def state_dict(self) -> dict:
        return {"weights": self.weights.detach().clone(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.weights.copy_(state["weights"])  # in place: the optimiser holds this tensor
        self.optimizer.load_state_dict(state["optimizer"])
