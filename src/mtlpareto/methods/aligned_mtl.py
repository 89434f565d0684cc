"""Aligned-MTL (Senushkin, Patakin, Kuznetsov & Konushin, CVPR 2023): align the gradients' principal components.

With the eigendecomposition M = G G^T = V diag(lambda) V^T (over the non-zero eigenvalues), the
gradient system is made orthogonal with equal principal components of size sigma_min =
sqrt(lambda_min): G' = B G with B = sigma_min V diag(lambda)^(-1/2) V^T, a stable, well-
conditioned system.  The update is the sum of the aligned gradients, d = 1^T B G: task
weights v = B 1.  The scale `min` (sigma_min) is the paper's default; `median` and `rmse` are
the official code's alternatives.  Heads get the plain sum of their losses.
"""

from __future__ import annotations

import numpy as np
import torch

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS
from mtlpareto.methods.gram import GramMethod, gram_matrix

SCALES = ("min", "median", "rmse")


def aligned_weights(gram: torch.Tensor | np.ndarray, scale: str = "min") -> np.ndarray:
    m = np.asarray(gram.detach().cpu().double().numpy() if isinstance(gram, torch.Tensor) else gram, dtype=np.float64)
    m = 0.5 * (m + m.T)
    eigval, eigvec = np.linalg.eigh(m)
    tol = eigval.max() * m.shape[0] * np.finfo(np.float64).eps
    keep = eigval > tol
    if not keep.any():
        return np.zeros(m.shape[0])  # every gradient is zero: no direction
    lam, v = eigval[keep], eigvec[:, keep]
    sigma = np.sqrt(lam)
    size = {"min": sigma.min(), "median": float(np.median(sigma)), "rmse": float(np.sqrt(lam.mean()))}[scale]
    b = size * (v / sigma) @ v.T
    return b.sum(axis=1)


@METHODS.register("aligned_mtl")
class AlignedMTL(GramMethod):
    label = "Aligned-MTL"
    claims = frozenset({"permutation_equivariant", "scale_invariant"})

    def __init__(self, n_tasks: int, preference=None, task=None, scale: str = "min") -> None:
        super().__init__(n_tasks, preference, task)
        if scale not in SCALES:
            raise ConfigError(f"aligned_mtl: option scale must be one of {', '.join(SCALES)}, got {scale!r}")
        self.scale = scale

    def combination(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(aligned_weights(gram_matrix(grads), self.scale))

    def head_weights(self, weights: torch.Tensor) -> torch.Tensor:
        return torch.ones(self.n_tasks)
