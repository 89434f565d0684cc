"""GradDrop (Chen et al., NeurIPS 2020, "Just Pick a Sign", Algorithm 1): gradient sign dropout.

Works on the gradients of each task loss w.r.t. the shared representation z. Per element,
the positive sign purity P = 0.5 (1 + sum_t s_t / sum_t |s_t|) and a uniform draw U pick a
sign; task t keeps its gradient there if it has that sign:

    M_t = [P > U] * [s_t > 0] + [P < U] * [s_t < 0],   dL/dz = sum_t (l + (1 - l) M_t) * dL_t/dz,

with leak l (0: pure GradDrop). The sign statistics s_t are, as in Algorithm 1 and the authors'
lingvo code: dL_t/dz times sign(z) (`input_sign`) and summed over the batch (`sum_batch`), so
one sign is picked per feature for the whole batch; turning both off applies the formula to
every element of dL_t/dz. The masked z-gradient is backpropagated through the encoder once;
each head gets its own task's gradient.
"""

from __future__ import annotations

import torch

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, StepContext, check_number, seeded_generator


def graddrop_mask(stats: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Keep mask M [T, N] from sign statistics [T, N] and uniform draws [N] (Algorithm 1)."""
    total = stats.sum(dim=0)
    abs_total = stats.abs().sum(dim=0)
    # Where every task's statistic is 0 there is nothing to keep or drop; P = 1/2 avoids 0/0.
    purity = torch.where(abs_total > 0, 0.5 * (1.0 + total / abs_total.clamp_min(torch.finfo(stats.dtype).tiny)), torch.full_like(total, 0.5))
    return ((purity > uniform) & (stats > 0)) | ((purity < uniform) & (stats < 0))


@METHODS.register("graddrop")
class GradDrop(Method):
    label = "GradDrop"
    uses_representation = True

    def __init__(
        self,
        n_tasks: int,
        preference=None,
        task=None,
        leak: float = 0.0,
        input_sign: bool = True,
        sum_batch: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_tasks, preference, task)
        self.leak = float(check_number(leak, "leak", "graddrop", low=0.0, high=1.0))
        for name, value in (("input_sign", input_sign), ("sum_batch", sum_batch)):
            if not isinstance(value, bool):
                raise ConfigError(f"graddrop: option {name} must be true or false, got {value!r}")
        self.input_sign = input_sign
        self.sum_batch = sum_batch
        self.generator = seeded_generator(seed, "graddrop")

    def feature_gradient(self, grads: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The masked gradient w.r.t. z, shape [B, F'] from per-task gradients [T, B*F']."""
        t, batch = grads.shape[0], features.shape[0]
        grads = grads.reshape(t, batch, -1)
        stats = grads
        if self.input_sign:
            stats = stats * torch.sign(features.detach()).reshape(1, batch, -1).to(grads)
        if self.sum_batch:
            stats = stats.sum(dim=1, keepdim=True)
        # Draws on the CPU generator: the same stream on every device, and checkpointable.
        uniform = torch.rand(stats.shape[1:], generator=self.generator, dtype=torch.float64).to(grads)
        mask = graddrop_mask(stats.reshape(t, -1), uniform.reshape(-1)).reshape(stats.shape)
        keep = self.leak + (1.0 - self.leak) * mask.to(grads)  # broadcast over the batch when summed
        return (keep * grads).sum(dim=0)

    def backward(self, ctx: StepContext) -> torch.Tensor:
        """Returns the heads' weights (1 each): the shared update is a mask, not a weighting."""
        feature_grad = self.feature_gradient(ctx.feature_jacobian().detach(), ctx.representation)
        weights = torch.ones(self.n_tasks)
        ctx.backward_features(feature_grad, head_weights=weights)
        return weights

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
