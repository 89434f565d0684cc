"""PCGrad (Yu et al., NeurIPS 2020, Algorithm 1): project conflicting gradients.

For every task i, visit the other tasks j in a random order; whenever the (already projected)
g_i conflicts with the original g_j (g_i . g_j < 0), replace g_i by its projection onto the
normal plane of g_j. The shared parameters get sum_i g_i (the paper; "mean" is the default
of the authors' PyTorch port); each head gets its own task's gradient.

Every projected g_i stays a linear combination sum_j C_ij g_j of the original gradients, so
the projections run on the T x T Gram matrix (no D-sized work and no device syncs inside the
loop) and the update is (1^T C) G: one [T] x [T, D] product.
"""

from __future__ import annotations

import torch

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import seeded_generator
from mtlpareto.methods.gram import GramMethod, gram_matrix

REDUCTIONS = ("sum", "mean")


def projection_coefficients(gram: torch.Tensor, orders: list[list[int]]) -> torch.Tensor:
    """C [T, T] with projected g_i = sum_j C_ij g_j, from the Gram matrix G G^T.

    orders[i] lists the tasks j != i in the order task i visits them.
    """
    gram = gram.detach().to("cpu", torch.float64)
    coeffs = torch.eye(gram.shape[0], dtype=torch.float64)
    for i, order in enumerate(orders):
        c = coeffs[i]
        for j in order:
            dot = float(c @ gram[:, j])  # (projected g_i) . g_j
            if dot < 0 and gram[j, j] > 0:
                c = c.clone()
                c[j] -= dot / float(gram[j, j])
        coeffs[i] = c
    return coeffs


def project_conflicting(grads: torch.Tensor, orders: list[list[int]]) -> torch.Tensor:
    """Projected gradients [T, D] (PCGrad's inner loop)."""
    coeffs = projection_coefficients(gram_matrix(grads), orders)
    return coeffs.to(grads) @ grads


@METHODS.register("pcgrad")
class PCGrad(GramMethod):
    label = "PCGrad"
    # With two tasks the visiting order is forced, so the claims hold for T = 2 only (tested so).
    claims = frozenset({"permutation_equivariant", "scale_invariant", "non_conflicting"})

    def __init__(self, n_tasks: int, preference=None, task=None, reduction: str = "sum", seed: int | None = None) -> None:
        super().__init__(n_tasks, preference, task)
        if reduction not in REDUCTIONS:
            raise ConfigError(f"pcgrad: option reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction
        self.generator = seeded_generator(seed, "pcgrad")

    def orders(self) -> list[list[int]]:
        """A fresh random visiting order of the other tasks for every task."""
        out = []
        for i in range(self.n_tasks):
            perm = torch.randperm(self.n_tasks, generator=self.generator).tolist()
            out.append([j for j in perm if j != i])
        return out

    @property
    def scale(self) -> float:
        return 1.0 if self.reduction == "sum" else 1.0 / self.n_tasks

    def combination(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """The effective weights of the shared update on the original gradients."""
        return self.scale * projection_coefficients(gram_matrix(grads), self.orders()).sum(dim=0)

    def head_weights(self, weights: torch.Tensor) -> torch.Tensor:
        return torch.full((self.n_tasks,), self.scale)  # each head: its own task's gradient

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
