"""Methods that turn per-task gradients (or their Gram matrix) into one combination.

MGDA, MGDA-UB, PCGrad, CAGrad and Pareto MTL share one path: take the [T, D] per-task
gradients (w.r.t. the shared parameters, or w.r.t. the shared representation), map them to
weights v [T] (`combination`, usually through the T x T Gram matrix G G^T), then apply
sum_t v_t g_t.  A subclass implements `combination` and declares:

* `gradients`: "parameters" (exact per-task gradients of the shared parameters) or
  "representation" (gradients w.r.t. z, the MGDA-UB bound: only the heads are traversed);
* the update is set from the gradients already computed: v^T G for the shared parameters
  (or, for representation gradients, v^T G_z backpropagated once through the encoder), and
  the heads' gradients of sum_t h_t L_t (`head_weights`, default v): no second full backward;
* `claims`: the properties it guarantees, checked for every such method by
  tests/test_gram_methods.py ("permutation_equivariant": permuting the tasks permutes v;
  "scale_invariant": v(c G) = v(G) for c > 0; "non_conflicting": g_t . d >= 0 for every t).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from mtlpareto.methods.base import Method, StepContext

GRADIENTS = ("parameters", "representation")


def gram_matrix(grads: torch.Tensor) -> torch.Tensor:
    """G G^T in float64: the combinations compare inner products, keep them accurate."""
    g64 = grads.detach().double()
    return g64 @ g64.T


class GramMethod(Method):
    gradients: ClassVar[str] = "parameters"
    claims: ClassVar[frozenset[str]] = frozenset()

    def combination(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """Weights v [T] of the update sum_t v_t g_t, from gradients [T, D] and losses [T]."""
        raise NotImplementedError

    def head_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """Loss weights of the heads' gradients (default: the combination itself)."""
        return weights

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.uses_representation = cls.gradients == "representation"

    def task_gradients(self, ctx: StepContext) -> torch.Tensor:
        return (ctx.shared_jacobian() if self.gradients == "parameters" else ctx.feature_jacobian()).detach()

    def backward(self, ctx: StepContext) -> torch.Tensor:
        grads = self.task_gradients(ctx)
        weights = self.combination(grads, ctx.losses)
        if self.gradients == "parameters":
            ctx.set_shared_gradient(weights.to(grads) @ grads, head_weights=self.head_weights(weights))
        else:
            ctx.backward_features(weights.to(grads) @ grads, head_weights=self.head_weights(weights))
        return weights.float()
