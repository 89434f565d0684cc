"""MGDA (Sener & Koltun 2018, Alg. 2): min-norm combination of per-task shared gradients."""

from __future__ import annotations

import torch

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS
from mtlpareto.methods.gram import GramMethod
from mtlpareto.solvers import min_norm_weights_from_gram
from mtlpareto.solvers.min_norm import gram_float64

NORMALIZATIONS = ("none", "l2", "loss", "loss+")
SOLVERS = ("exact", "frank_wolfe")


def gradient_normalizers(norms: torch.Tensor, losses: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-task scale the official MGDA code divides gradients by before solving, from the
    gradients' norms ||g_t|| [T].

    none: 1; l2: ||g_t||; loss: L_t; loss+: L_t * ||g_t||.
    """
    if kind == "none":
        scale = torch.ones_like(norms)
    elif kind == "l2":
        scale = norms
    elif kind == "loss":
        scale = losses.detach().to(norms)
    elif kind == "loss+":
        scale = losses.detach().to(norms) * norms
    else:
        raise ConfigError(f"unknown normalization {kind!r}; choose one of {', '.join(NORMALIZATIONS)}")
    # A task with a zero gradient or loss is already optimal: leave its (zero) row as is.
    return torch.where(scale > 0, scale, torch.ones_like(scale))


class _MinNormMethod(GramMethod):
    """The min-norm point of the (normalised) task gradients' convex hull.

    The update sum_t alpha_t g_t is set directly from the gradients already computed (the
    official code backpropagates sum_t alpha_t L_t once more: the same direction, one more pass).
    """

    claims = frozenset({"permutation_equivariant", "scale_invariant", "non_conflicting"})

    def __init__(self, n_tasks: int, preference=None, task=None, normalization: str = "loss+", solver: str = "exact", max_iter: int = 250) -> None:
        super().__init__(n_tasks, preference, task)
        if normalization not in NORMALIZATIONS:
            raise ConfigError(f"normalization: {normalization!r} is not one of {', '.join(NORMALIZATIONS)}")
        if solver not in SOLVERS:
            raise ConfigError(f"solver: {solver!r} is not one of {', '.join(SOLVERS)}")
        self.normalization = normalization
        self.solver = solver
        self.max_iter = max_iter
        # The exact solver starts from the last step's support (it changes little between
        # steps): same optimum, fewer active-set changes.  Part of the resumable state.
        self.support: list[int] = []

    def combination(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        # The normalisation g_t / s_t acts on the Gram matrix (M_tr / (s_t s_r)), its norms are
        # its diagonal: no [T, D] copy of the gradients (1.8 GB for ResNet-18 at T = 40).
        gram = torch.from_numpy(gram_float64(grads))
        scale = gradient_normalizers(gram.diagonal().clamp_min(0).sqrt(), losses, self.normalization)
        weights = min_norm_weights_from_gram(gram / torch.outer(scale, scale), method=self.solver, max_iter=self.max_iter, start=self.support or None)
        self.support = torch.nonzero(weights > 0).flatten().tolist()
        return weights.to(losses)

    def state_dict(self) -> dict:
        return {"support": list(self.support)}

    def load_state_dict(self, state: dict) -> None:
        self.support = list(state["support"])


@METHODS.register("mgda")
class MGDA(_MinNormMethod):
    """Exact MGDA: one gradient per task w.r.t. all shared parameters (T backward passes' worth)."""

    label = "MGDA"
    gradients = "parameters"
