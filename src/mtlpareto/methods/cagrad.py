"""CAGrad (Liu, Liu, Jin, Stone & Liu, NeurIPS 2021): conflict-averse gradient descent.

With g0 the mean task gradient and phi = c^2 ||g0||^2, the update maximises the worst task's
local improvement within a ball around g0. Its dual (as in the paper and the official code)

    min_{w in simplex}  F(w) = g_w . g0 + sqrt(phi) ||g_w||,     g_w = sum_t w_t g_t,

only needs the T x T Gram matrix; the direction is d = g0 + (sqrt(phi) / ||g_w||) g_w, divided
by (1 + c^2) as in the official code (rescale=1; 0: no rescaling, 2: divide by 1 + c).
The official code solves the dual with scipy's SLSQP; we solve the same problem exactly (see
`cagrad_dual_weights`) and certify the result. Heads get the plain sum of their task losses,
as in the official code.
"""

from __future__ import annotations

import numpy as np
import torch

from mtlpareto.errors import ConfigError, TrainingError
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import check_number
from mtlpareto.methods.gram import GramMethod, gram_matrix
from mtlpareto.solvers import min_norm_weights_from_gram

RESCALES = (0, 1, 2)
# Accepted Frank-Wolfe gap (an upper bound on F(w) - min F), relative to max_t ||g_t||^2.
_GAP_TOL = 1e-8
# ||g_w|| (relative to max_t ||g_t||) below this is roundoff of sqrt(w^T A w): g_w = 0.
_NORM_FLOOR = 1e-7
# KKT tolerance of the inner min-norm solves: shifted Gram matrices can be nearly affinely
# dependent, and the final duality-gap check is what certifies the result.
_KKT_TOL = 1e-8


def cagrad_objective(w: np.ndarray, gram: np.ndarray, c: float) -> float:
    """F(w) = g_w . g0 + c ||g0|| ||g_w|| on Gram entries (g0 = mean gradient)."""
    t = gram.shape[0]
    g0_norm = np.sqrt(max(gram.sum() / t**2, 0.0))
    return float(w @ gram.mean(axis=1) + c * g0_norm * np.sqrt(max(w @ gram @ w, 0.0)))


def _dual_gradient(w: np.ndarray, gram: np.ndarray, sqrt_phi: float) -> np.ndarray:
    gw_norm = np.sqrt(max(float(w @ gram @ w), 0.0))
    return gram.mean(axis=1) + (sqrt_phi * (gram @ w) / gw_norm if gw_norm > 0 else 0.0)


def _shifted_min_norm(gram: np.ndarray, kappa: float) -> tuple[np.ndarray, float]:
    """Min-norm point of {g_t + kappa g0}: its weights w and ||g_w||."""
    b = gram.mean(axis=1)  # g_t . g0
    shifted = gram + kappa * (b[:, None] + b[None, :]) + kappa**2 * gram.mean()
    w = min_norm_weights_from_gram(shifted, tol=_KKT_TOL).numpy()
    return w, float(np.sqrt(max(w @ gram @ w, 0.0)))


def cagrad_dual_weights(gram: torch.Tensor | np.ndarray, c: float) -> np.ndarray:
    """The minimiser w (on the simplex) of the CAGrad dual F, from the Gram matrix G G^T.

    Instead of a general NLP solve (the official code's SLSQP, whose answers we could not
    certify when g_w nearly vanishes or gradient norms differ by orders of magnitude) we use
    the exact reformulation
    s ||x|| = min_{kappa > 0} (||x||^2 / kappa + s^2 kappa) / 2 with s = sqrt(phi): for fixed
    kappa, min_w g_w . g0 + ||g_w||^2 / (2 kappa) is the min-norm point of the shifted
    gradients {g_t + kappa g0} (Wolfe's exact algorithm), and the optimal kappa solves
    ||g_w(kappa)|| = s kappa, a monotone scalar equation (Brent's method). The result is
    certified by the Frank-Wolfe duality gap of F.
    """
    a = np.asarray(gram.detach().cpu().double().numpy() if isinstance(gram, torch.Tensor) else gram, dtype=np.float64)
    a = 0.5 * (a + a.T)
    t = a.shape[0]
    uniform = np.full(t, 1.0 / t)
    scale = float(np.max(np.diag(a)))
    if t == 1 or not scale > 0:
        return uniform
    a = a / scale  # F scales linearly with the Gram matrix: same minimiser, O(1) numbers
    g0_sq = float(a.mean())
    if not g0_sq > 1e-30:
        return uniform  # g0 = 0: F(w) = g_w . g0 = 0 for every w
    if c == 0:
        return np.eye(t)[int(np.argmin(a.mean(axis=1)))]  # F is linear: best vertex
    sqrt_phi = c * np.sqrt(g0_sq)

    def excess(log_kappa: float) -> float:
        kappa = np.exp(log_kappa)
        return _shifted_min_norm(a, kappa)[1] - sqrt_phi * kappa

    # ||g_w|| <= max_t ||g_t|| = 1, so at kappa = 2/s the excess is < 0; walk down for a sign change.
    hi = np.log(2.0 / sqrt_phi)
    lo = hi
    while True:
        lo -= np.log(10.0)
        if sqrt_phi * np.exp(lo) < _NORM_FLOOR:
            # ||g_w|| / kappa stays below s as kappa -> 0 (down to where ||g_w|| is roundoff): the
            # minimum is at the kink g_w = 0, i.e. 0 is in the convex hull of the gradients, and
            # the plain min-norm weights attain it.
            return min_norm_weights_from_gram(a, tol=_KKT_TOL).numpy()
        if excess(lo) > 0:
            break
    import scipy.optimize  # lazy: scipy's import costs ~1 s in every job that never needs it

    log_kappa = hi if excess(hi) == 0 else scipy.optimize.brentq(excess, lo, hi, xtol=1e-13, maxiter=200)
    w = _shifted_min_norm(a, np.exp(log_kappa))[0]
    grad = _dual_gradient(w, a, sqrt_phi)
    gap = float(grad @ w - grad.min())  # >= F(w) - min F, since F is convex
    if not gap <= _GAP_TOL:
        raise TrainingError(f"cagrad: the dual solve is not optimal (Frank-Wolfe gap {gap:.2e} > {_GAP_TOL:.0e})")
    return w


def closest_non_conflicting_weights(gram: np.ndarray) -> np.ndarray:
    """Weights v of the point d = sum_t v_t g_t closest to the mean gradient g0 with g_t . d >= 0
    for every task: d = g0 + sum_t mu_t g_t, mu >= 0 minimising ||d - g0|| (the projection of g0
    onto the cone {d : G d >= 0}).

    Its dual is min_{mu >= 0} 1/2 mu^T M mu + mu^T b with b = G g0 = M 1/T, a non-negative least
    squares problem on M's square root (M may be singular: collinear gradients), solved by
    Lawson-Hanson's exact active-set method.
    """
    import scipy.optimize  # lazy: see cagrad_dual_weights

    t = gram.shape[0]
    b = gram.mean(axis=1)
    eigval, eigvec = np.linalg.eigh(gram)
    keep = eigval > eigval.max() * 1e-12
    root = np.sqrt(eigval[keep])[:, None] * eigvec[:, keep].T  # M = root^T root
    target = -(eigvec[:, keep].T @ b) / np.sqrt(eigval[keep])  # b = root^T (-target): b is in M's range
    mu = scipy.optimize.nnls(root, target)[0]
    return np.full(t, 1.0 / t) + mu


def cagrad_task_weights(gram: torch.Tensor | np.ndarray, c: float, rescale: int = 1) -> np.ndarray:
    """Weights v with the CAGrad direction d = sum_t v_t g_t (dual solve plus direction formula)."""
    a = np.asarray(gram.detach().cpu().double().numpy() if isinstance(gram, torch.Tensor) else gram, dtype=np.float64)
    t = a.shape[0]
    w = cagrad_dual_weights(a, c)
    sqrt_phi = c * np.sqrt(max(a.sum() / t**2, 0.0))
    gw_norm = np.sqrt(max(float(w @ a @ w), 0.0))
    scale = np.sqrt(max(float(np.max(np.diag(a))), 0.0))
    if c > 0 and scale > 0 and gw_norm <= _NORM_FLOOR * scale:
        # 0 is in the convex hull of the gradients (g_w* = 0): the optimal worst-task
        # improvement is 0, and the direction formula degenerates to g0, which can make a task
        # worse at first order.  The optimum instead: the d nearest g0 that harms no task (it
        # lies within the ball ||d - g0|| <= sqrt(phi) by strong duality; checked).
        v = closest_non_conflicting_weights(a)
        shift = v - 1.0 / t
        if float(shift @ a @ shift) > sqrt_phi**2 * (1 + 1e-9) + 1e-30:
            raise TrainingError("cagrad: no direction within the trust region harms no task, although the dual optimum says one exists")
    else:
        # d = g0 + (sqrt(phi)/||g_w||) g_w
        lam = sqrt_phi / gw_norm if gw_norm > 0 else 0.0
        v = np.full(t, 1.0 / t) + lam * w
    if rescale == 1:
        v = v / (1.0 + c**2)
    elif rescale == 2:
        v = v / (1.0 + c)
    return v


@METHODS.register("cagrad")
class CAGrad(GramMethod):
    label = "CAGrad"
    claims = frozenset({"permutation_equivariant", "scale_invariant"})

    def __init__(self, n_tasks: int, preference=None, task=None, c: float = 0.4, rescale: int = 1) -> None:
        super().__init__(n_tasks, preference, task)
        self.c = float(check_number(c, "c", "cagrad", low=0.0))
        if rescale not in RESCALES or isinstance(rescale, bool):
            raise ConfigError(f"cagrad: option rescale must be 0 (none), 1 (divide by 1 + c^2) or 2 (divide by 1 + c), got {rescale!r}")
        self.rescale = rescale

    def combination(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """The effective weights v of the shared update d = sum_t v_t g_t."""
        return torch.from_numpy(cagrad_task_weights(gram_matrix(grads), self.c, self.rescale))

    def head_weights(self, weights: torch.Tensor) -> torch.Tensor:
        return torch.ones(self.n_tasks)  # heads: the plain sum of their losses (official code)
