"""Nash-MTL (Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, ICML 2022).

The update d = sum_t alpha_t g_t is the Nash bargaining solution between the tasks: alpha > 0
with (G G^T alpha)_t = 1 / alpha_t for every t, i.e. g_t . d = 1 / alpha_t (every task gains,
the task with the smaller gain gets the larger weight).  That condition is the stationarity
condition of the strictly convex problem

    min_{alpha > 0}  1/2 alpha^T M alpha - sum_t log alpha_t,      M = G G^T,

which we solve exactly by damped Newton steps (the official code runs 20 iterations of a
sequential convex approximation with cvxpy/ECOS on the same condition); the result is certified
by the residual |alpha_t (M alpha)_t - 1|.  As in the official code, the shared gradient's norm
is clipped to `max_norm` (1.0; 0 turns it off) and the weights may be recomputed only every
`update_weights_every` steps.  When 0 lies in the hull of the gradients in a way that leaves a
direction u >= 0 with M u = 0, no bargaining solution exists: that is an error, not a fallback.
"""

from __future__ import annotations

import numpy as np
import torch

from mtlpareto.errors import TrainingError
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import StepContext, check_number
from mtlpareto.methods.gram import GramMethod, gram_matrix

_RESIDUAL_TOL = 1e-8


def _no_solution(alpha: np.ndarray) -> TrainingError:
    return TrainingError(
        "nash_mtl: no Nash bargaining solution (the objective is unbounded: some non-negative "
        f"combination of the task gradients vanishes); the weights grew to {np.max(alpha):.2e}"
    )


def nash_weights(gram: torch.Tensor | np.ndarray, max_iter: int = 100) -> np.ndarray:
    """alpha > 0 with alpha_t (M alpha)_t = 1 for every t (M = the Gram matrix)."""
    m = np.asarray(gram.detach().cpu().double().numpy() if isinstance(gram, torch.Tensor) else gram, dtype=np.float64)
    m = 0.5 * (m + m.T)
    scale = float(np.linalg.norm(m))
    if not scale > 0:
        raise TrainingError("nash_mtl: every task gradient is zero; there is nothing to bargain over")
    a = m / scale  # alpha(M / s) = sqrt(s) alpha(M): solve at unit scale, rescale at the end
    alpha = 1.0 / np.sqrt(np.clip(np.diag(a), 1e-12, None))

    def objective(x: np.ndarray) -> float:
        return 0.5 * float(x @ a @ x) - float(np.log(x).sum())

    for _ in range(max_iter):
        grad = a @ alpha - 1.0 / alpha
        residual = np.abs(alpha * (a @ alpha) - 1.0).max()
        if residual <= _RESIDUAL_TOL:
            return alpha / np.sqrt(scale)
        hessian = a + np.diag(1.0 / alpha**2)
        try:
            step = -np.linalg.solve(hessian, grad)
        except np.linalg.LinAlgError:  # alpha diverged: only when no solution exists
            raise _no_solution(alpha) from None
        # Backtracking: stay in alpha > 0 and decrease the (strictly convex) objective.
        t = 1.0
        while np.any(alpha + t * step <= 0):
            t *= 0.5
        f0, slope = objective(alpha), float(grad @ step)
        # The test compares objective values, whose predicted decrease (-slope / 2, the squared
        # Newton decrement over 2) falls below their roundoff near the solution: there it only
        # sees noise, shrinks t to nothing and the residual stalls near sqrt(eps) ~ 1e-8. Newton's
        # full step is then the right one (the objective is self-concordant: quadratic convergence).
        if -slope > 1e-12 * max(1.0, abs(f0)):
            while objective(alpha + t * step) > f0 + 1e-4 * t * slope and t > 1e-12:
                t *= 0.5
        alpha = alpha + t * step
        if not np.all(np.isfinite(alpha)) or alpha.max() > 1e12:
            raise _no_solution(alpha)
    residual = np.abs(alpha * (a @ alpha) - 1.0).max()
    raise TrainingError(
        f"nash_mtl: Newton's method did not reach the residual {_RESIDUAL_TOL:g} in {max_iter} steps "
        f"(last residual {residual:.2e}); if some non-negative combination of the task gradients "
        "(nearly) vanishes, no bargaining solution exists"
    )


@METHODS.register("nash_mtl")
class NashMTL(GramMethod):
    label = "Nash-MTL"
    claims = frozenset({"permutation_equivariant", "non_conflicting"})

    def __init__(self, n_tasks: int, preference=None, task=None, max_norm: float = 1.0, update_weights_every: int = 1) -> None:
        super().__init__(n_tasks, preference, task)
        self.max_norm = float(check_number(max_norm, "max_norm", "nash_mtl", low=0.0))
        self.update_weights_every = int(check_number(update_weights_every, "update_weights_every", "nash_mtl", low=1, integer=True))
        self.steps = 0
        self.alpha: torch.Tensor | None = None

    def combination(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        if self.alpha is None or self.steps % self.update_weights_every == 0:
            self.alpha = torch.from_numpy(nash_weights(gram_matrix(grads)))
        self.steps += 1
        weights = self.alpha.clone()
        if self.max_norm > 0:
            norm = float(torch.linalg.vector_norm(weights.to(grads) @ grads))
            if norm > self.max_norm:  # the official code clips the shared gradient's norm
                weights = weights * (self.max_norm / norm)
        return weights

    def state_dict(self) -> dict:
        return {"steps": self.steps, "alpha": None if self.alpha is None else self.alpha.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self.alpha = None if state["alpha"] is None else state["alpha"].clone()
