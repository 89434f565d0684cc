"""IMTL-G (Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, ICLR 2021): impartial gradients.

The update d = sum_t alpha_t g_t (sum_t alpha_t = 1) has equal projections on every task's
unit gradient u_t = g_t / ||g_t||: d . (u_1 - u_t) = 0 for t = 2..T, a linear system
alpha_{2..T} = g_1 U^T (D U^T)^-1 with D_t = g_1 - g_t, U_t = u_1 - u_t, written here on Gram
entries.  This is the gradient part (IMTL-G) of the paper; its loss-scale part (IMTL-L) is not
included.  Heads get the plain sum of their losses.  A singular system (two tasks with the
same direction) is an error naming the cause.
"""

from __future__ import annotations

import numpy as np
import torch

from mtlpareto.errors import TrainingError
from mtlpareto.methods import METHODS
from mtlpareto.methods.gram import GramMethod, gram_matrix


def imtl_weights(gram: torch.Tensor | np.ndarray) -> np.ndarray:
    m = np.asarray(gram.detach().cpu().double().numpy() if isinstance(gram, torch.Tensor) else gram, dtype=np.float64)
    t = m.shape[0]
    if t == 1:
        return np.ones(1)
    norms = np.sqrt(np.clip(np.diag(m), 0.0, None))
    if not (norms > 0).all():
        raise TrainingError(f"imtl: task(s) {np.flatnonzero(norms == 0).tolist()} have a zero gradient, so no unit direction")
    gu = m / norms[None, :]  # gu[i, j] = g_i . u_j
    # rows: D_i = g_1 - g_i, columns: U_j = u_1 - u_j, for i, j = 2..T
    rhs = gu[0, 0] - gu[0, 1:]  # g_1 . U_j
    system = gu[0, 0] - gu[0, 1:][None, :] - gu[1:, 0][:, None] + gu[1:, 1:]  # D_i . U_j
    try:
        rest = np.linalg.solve(system.T, rhs)  # alpha_{2..T} D U^T = g_1 U^T
    except np.linalg.LinAlgError:
        raise TrainingError("imtl: the impartiality system is singular (two task gradients share a direction)") from None
    return np.concatenate([[1.0 - rest.sum()], rest])


@METHODS.register("imtl")
class IMTL(GramMethod):
    label = "IMTL-G"
    claims = frozenset({"permutation_equivariant", "scale_invariant"})

    def combination(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(imtl_weights(gram_matrix(grads)))

    def head_weights(self, weights: torch.Tensor) -> torch.Tensor:
        return torch.ones(self.n_tasks)
