"""Min-norm point in the convex hull of task gradients (MGDA, Sener & Koltun 2018).

Given per-task gradients ``G`` (``[T, D]``) find ``alpha`` on the probability simplex
minimising ``||sum_t alpha_t G_t||^2 = alpha^T M alpha`` with ``M = G G^T``.  The resulting
direction ``d = G^T alpha`` satisfies ``g_t . d >= ||d||^2`` for every task (the KKT conditions),
so ``-d`` decreases every task loss, or ``d = 0`` and the point is Pareto-stationary.

Two solvers work on the ``T x T`` Gram matrix only (``D`` never enters the iterations):

* ``"frank_wolfe"``: Algorithm 2 of the paper, as written there: start uniform, move towards the
  vertex ``e_t`` with the smallest ``(M alpha)_t`` using the closed-form two-point line search of
  Algorithm 1, stop when the step vanishes or after ``max_iter`` iterations.  Cheap, but only
  approximately optimal (Frank-Wolfe converges sublinearly).
* ``"exact"``: Wolfe's min-norm-point algorithm (P. Wolfe, "Finding the nearest point in a
  polytope", Math. Programming 11, 1976), written on Gram entries.  It is an active-set method
  that terminates finitely with the optimal support; the result is checked against the KKT
  conditions and a :class:`MinNormSolverError` is raised rather than returning a point that
  fails them.
"""

from __future__ import annotations

from typing import Union

import numpy as np
import torch

from mtlpareto.errors import MTLParetoError

METHODS = ("exact", "frank_wolfe")

ArrayLike = Union[torch.Tensor, np.ndarray]

# Wolfe's stopping test: a vertex counts as improving only if its KKT violation exceeds this
# (relative to the roundoff scale, see _roundoff_scale).  Far below the default verification
# tolerance, so the final KKT check is about roundoff, not about stopping early.
_WOLFE_STOP_EPS = 1e-14
# Relative cut-off for singular values in the affine-minimiser solve (near-affinely-dependent
# active sets, e.g. duplicated or collinear gradients, must not blow the weights up).
_AFFINE_RCOND = 1e-13
# Below this squared ratio of Cholesky pivots the active-set system is treated as (near-)
# singular and solved by truncated least squares instead.
_CHOL_MIN_PIVOT = 1e-12
# A vertex whose share of sum_s mu_s ||g_s|| is below this has a zero weight up to roundoff.
_NEGLIGIBLE_WEIGHT = 1e-14


class MinNormSolverError(MTLParetoError):
    """The min-norm problem is ill-posed (bad input) or the solver could not certify optimality."""


def min_norm_weights(
    grads: torch.Tensor,
    method: str = "exact",
    max_iter: int = 250,
    tol: float = 1e-10,
    start: list[int] | None = None,
) -> torch.Tensor:
    """Weights ``alpha`` (on the simplex) of the min-norm convex combination of ``grads``' rows.

    Args:
        grads: per-task gradients, shape ``[T, D]`` with ``T >= 1``; finite values.
        method: ``"exact"`` (Wolfe's min-norm-point algorithm, optimal up to roundoff) or
            ``"frank_wolfe"`` (the paper's Algorithm 2, iteration-capped and approximate).
        max_iter: Frank-Wolfe iteration cap; for ``"exact"`` a cap on Wolfe's major
            iterations, raised to at least ``20 * T`` (the method needs about ``T`` of them).
        tol: Frank-Wolfe stops when ``||alpha_new - alpha||_1 < tol``.  For ``"exact"`` the
            allowed KKT violation ``alpha^T M alpha - (M alpha)_r`` relative to the squared
            gradient norms involved.
        start: ``"exact"`` only: tasks to start Wolfe's active set from (e.g. the previous
            training step's support, which changes little from step to step).  The result is
            the same optimum, certified the same way; a start that is not a valid active set
            (its affine minimiser leaves the simplex) is replaced by the usual one-vertex start.

    Returns:
        ``alpha``, shape ``[T]``, non-negative, summing to 1, with the dtype (float64 for
        non-floating input) and device of ``grads``.  The Gram matrix is formed in float64
        and the solve runs in float64 numpy on the CPU.

    Raises:
        MinNormSolverError: wrong shape, ``T == 0``, NaN/inf entries, an unknown method, or
            (``"exact"``) a result that fails the optimality check.
    """
    if not isinstance(grads, torch.Tensor):
        raise MinNormSolverError(f"grads must be a torch.Tensor [T, D], got {type(grads).__name__}")
    if grads.ndim != 2:
        raise MinNormSolverError(f"expected a 2-D tensor [T, D] of per-task gradients, got shape {tuple(grads.shape)}")
    if grads.shape[0] < 1:
        raise MinNormSolverError(f"need at least one task gradient, got shape {tuple(grads.shape)}")
    if grads.is_complex():
        raise MinNormSolverError("grads must be real, got a complex tensor")
    _check_options(method, max_iter, tol)

    out_dtype = grads.dtype if grads.is_floating_point() else torch.float64
    gram = gram_float64(grads)
    # A NaN/inf entry of row t makes M_tt NaN/inf: checking the T x T matrix finds every bad
    # row without another pass over the [T, D] gradients.
    bad = np.flatnonzero(~np.isfinite(np.diag(gram))).tolist()
    if bad:
        raise MinNormSolverError(f"grads contain NaN/inf (task rows {bad}); cannot solve the min-norm problem")
    if not np.isfinite(gram).all():
        raise MinNormSolverError("the Gram matrix G G^T overflows float64; rescale the gradients")
    alpha = _solve(gram, method, max_iter, tol, start)
    return torch.from_numpy(alpha).to(device=grads.device, dtype=out_dtype)


# Columns per float64 block of the Gram matrix: a [T, D] float64 copy of ResNet-18's 11M shared
# parameters at T = 40 would take 3.5 GB; a block of 2^15 columns (T x 256 KB) stays in cache
# while it is converted and multiplied (measured, T = 40, D = 11M, one thread: 0.6 s against
# 0.9 s for blocks of 2^20).  LeNet-sized gradients (D = 21k) are one block, one BLAS call.
GRAM_BLOCK = 1 << 15


def gram_float64(grads: torch.Tensor) -> np.ndarray:
    """G G^T in float64 as a numpy array.

    On the CPU through numpy's BLAS (measured here at T = 40, D = 21k: 0.8 ms against 2.5 ms
    for torch's float64 matmul), block by block of columns, on as many BLAS threads as
    `training.run_state.set_threads` allowed; on a GPU on the device, so only the
    T x T result is copied.
    """
    g = grads.detach()
    if g.device.type == "cuda":
        g = g.to(torch.float64)
        return (g @ g.T).cpu().numpy()
    g32 = g.cpu().numpy()
    gram = np.zeros((g32.shape[0], g32.shape[0]))
    for start in range(0, g32.shape[1], GRAM_BLOCK):
        block = g32[:, start : start + GRAM_BLOCK].astype(np.float64, copy=False)
        gram += block @ block.T
    return gram


def min_norm_weights_from_gram(
    gram: ArrayLike,
    method: str = "exact",
    max_iter: int = 250,
    tol: float = 1e-10,
    start: list[int] | None = None,
) -> torch.Tensor:
    """Same as :func:`min_norm_weights` (`start` included), from the Gram matrix ``M = G G^T`` (``[T, T]``).

    ``gram`` may be a tensor, a numpy array or a nested list; it must be square, finite and
    (up to roundoff) symmetric positive semi-definite.  Returns a float64 CPU tensor ``[T]``.
    """
    if isinstance(gram, torch.Tensor):
        if gram.is_complex():
            raise MinNormSolverError("gram must be real, got a complex tensor")
        m = gram.detach().cpu().to(torch.float64).numpy()
    else:
        try:
            m = np.asarray(gram, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MinNormSolverError(f"gram must be a real [T, T] matrix: {exc}") from exc
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise MinNormSolverError(f"expected a square 2-D Gram matrix [T, T], got shape {m.shape}")
    if m.shape[0] < 1:
        raise MinNormSolverError("need at least one task (got an empty Gram matrix)")
    if not np.isfinite(m).all():
        raise MinNormSolverError("gram contains NaN/inf; cannot solve the min-norm problem")
    _check_options(method, max_iter, tol)
    m = 0.5 * (m + m.T)  # remove asymmetric roundoff; the objective only sees the symmetric part
    scale = float(np.max(np.abs(m))) if m.size else 0.0
    if scale > 0 and float(np.linalg.eigvalsh(m / scale)[0]) < -1e-8:
        raise MinNormSolverError("gram is not positive semi-definite, so it is not a Gram matrix G G^T")
    return torch.from_numpy(_solve(m, method, max_iter, tol, start))


# --------------------------------------------------------------------------- internals


def _check_options(method: str, max_iter: int, tol: float) -> None:
    if method not in METHODS:
        raise MinNormSolverError(f"unknown min-norm method {method!r}; choose one of {', '.join(METHODS)}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise MinNormSolverError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not (isinstance(tol, (int, float, np.floating)) and np.isfinite(tol) and tol >= 0):
        raise MinNormSolverError(f"tol must be a finite non-negative number, got {tol!r}")


def _solve(m: np.ndarray, method: str, max_iter: int, tol: float, start: list[int] | None = None) -> np.ndarray:
    """Dispatch on a validated, symmetric float64 Gram matrix; returns a simplex point."""
    t = m.shape[0]
    if t == 1:
        return np.ones(1)
    scale = float(np.max(np.diag(m)))
    if not scale > 0:
        # Every gradient is zero: every alpha is optimal (objective 0); uniform is the
        # symmetric choice.
        return np.full(t, 1.0 / t)
    # alpha is invariant to scaling M; normalising keeps the numbers O(1).
    m = m / scale
    if method == "frank_wolfe":
        alpha = _frank_wolfe(m, max_iter, tol)
    else:
        alpha = _wolfe_min_norm_point(m, max(max_iter, 20 * t), start)
        alpha = _project_to_simplex_drift(alpha)
        _verify_kkt(m, alpha, max(tol, 1e-14))
    return _project_to_simplex_drift(alpha)


def _project_to_simplex_drift(alpha: np.ndarray) -> np.ndarray:
    """Remove roundoff drift: clip tiny negatives, renormalise the sum to exactly 1."""
    alpha = np.clip(alpha, 0.0, None)
    total = alpha.sum()
    if not total > 0:  # cannot happen for outputs of the solvers; guard anyway
        raise MinNormSolverError("min-norm solver produced all-zero weights")
    return alpha / total


def _two_point_gamma(v1: float, v12: float, v2: float) -> float:
    """Algorithm 1 of the paper on Gram entries.

    Minimises ``||gamma * theta + (1 - gamma) * theta_bar||^2`` over ``gamma in [0, 1]`` with
    ``v1 = ||theta||^2``, ``v12 = theta . theta_bar``, ``v2 = ||theta_bar||^2``; ``gamma`` is the
    weight kept on ``theta``.
    """
    if v12 >= v1:  # theta is already no worse than anything on the segment
        return 1.0
    if v12 >= v2:  # theta_bar is
        return 0.0
    # Both cases above excluded => the denominator (v1 - v12) + (v2 - v12) is > 0.
    gamma = (v2 - v12) / (v1 + v2 - 2.0 * v12)
    return float(min(1.0, max(0.0, gamma)))


def _frank_wolfe(m: np.ndarray, max_iter: int, tol: float) -> np.ndarray:
    """Algorithm 2 of Sener & Koltun (2018): Frank-Wolfe with exact line search."""
    t = m.shape[0]
    alpha = np.full(t, 1.0 / t)
    m_alpha = m @ alpha
    for _ in range(max_iter):
        t_hat = int(np.argmin(m_alpha))  # linear minimisation oracle over the simplex
        v1 = float(alpha @ m_alpha)
        gamma = _two_point_gamma(v1, float(m_alpha[t_hat]), float(m[t_hat, t_hat]))
        new_alpha = gamma * alpha
        new_alpha[t_hat] += 1.0 - gamma
        change = float(np.abs(new_alpha - alpha).sum())
        alpha = new_alpha
        # M alpha is affine in alpha: update it instead of recomputing the T x T product.
        m_alpha = gamma * m_alpha + (1.0 - gamma) * m[:, t_hat]
        if change < tol:
            break
    return alpha


def _affine_minimizer(m_ss: np.ndarray) -> np.ndarray:
    """Weights ``mu`` (summing to 1) of the min-norm point of the affine hull of the points.

    With the Jacobi scaling ``mu = diag(s) nu``, ``s_i = 1 / ||g_i||`` (so that gradients whose
    norms differ by orders of magnitude do not swamp each other), ``B = diag(s) A diag(s)``
    has a unit diagonal and the problem is ``min nu^T B nu s.t. c^T nu = 1``, ``c = s``.
    Its KKT conditions ``B nu = -lambda c`` give ``(B + c c^T) nu = (1 - lambda) c``, so
    ``nu`` is proportional to ``(B + c_hat c_hat^T)^{-1} c_hat`` with ``c_hat = c / ||c||``
    (any positive multiple of ``c`` works; the unit one keeps both terms O(1)).
    ``B + c_hat c_hat^T`` is positive definite exactly when the points are affinely
    independent.
    """
    d = np.diag(m_ss)
    pos = d > 0
    if not pos.any():  # all points are the origin: any weights give the (zero) minimum
        return np.full(len(d), 1.0 / len(d))
    # A zero gradient in the set would make the optimum 0; give it unit scale rather than inf.
    s = np.where(pos, 1.0 / np.sqrt(np.where(pos, d, 1.0)), 1.0 / np.sqrt(d[pos].max()))
    c = s / np.linalg.norm(s)
    a = (m_ss * s[:, None]) * s[None, :] + np.outer(c, c)
    nu = _solve_psd(a, c)
    u = s * nu
    total = u.sum()
    if not total > 0:
        # c is in the range of B + c c^T, so c^T (B + c c^T)^+ c > 0 in exact arithmetic.
        raise MinNormSolverError("min-norm solver: affine sub-problem is numerically singular")
    return u / total


def _solve_psd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``a x = b`` for a symmetric PSD ``a`` with an O(1) diagonal, robustly.

    Cholesky is by far the cheapest factorisation and is accurate when ``a`` is well
    conditioned; for (near-)singular ``a`` (affinely dependent active sets: duplicated or
    collinear gradients) a truncated least-squares solve keeps the solution bounded.  One
    step of iterative refinement recovers accuracy lost to roundoff in either case.
    """
    # LAPACK directly (lazy import: scipy costs ~1 s in jobs that never solve): scipy.linalg's
    # cho_factor / cho_solve wrappers cost more than the factorisation at these sizes, and
    # the exact solver calls this once per active-set change (up to ~T times per solve).
    from scipy.linalg.lapack import dpotrf, dpotrs

    factor, info = dpotrf(a, lower=1, clean=0)
    pivots = np.abs(np.diag(factor))
    well_conditioned = info == 0 and pivots.min() ** 2 >= _CHOL_MIN_PIVOT * pivots.max() ** 2
    if well_conditioned:
        x = dpotrs(factor, b, lower=1)[0]
        return x + dpotrs(factor, b - a @ x, lower=1)[0]
    x = np.linalg.lstsq(a, b, rcond=_AFFINE_RCOND)[0]
    return x + np.linalg.lstsq(a, b - a @ x, rcond=_AFFINE_RCOND)[0]


def _warm_corral(m: np.ndarray, start: list[int]) -> tuple[np.ndarray, list[int]] | None:
    """Weights and active set of a warm start: the affine minimiser of `start` when it lies
    strictly inside their simplex (then it is a valid state of Wolfe's method), else None."""
    idx = np.asarray(sorted({int(i) for i in start if 0 <= int(i) < m.shape[0]}))
    if idx.size == 0:
        return None
    mu = _affine_minimizer(m[np.ix_(idx, idx)])
    if not bool((mu > _NEGLIGIBLE_WEIGHT).all()):
        return None
    lam = np.zeros(m.shape[0])
    lam[idx] = mu
    return lam, [int(i) for i in idx]


def _wolfe_min_norm_point(m: np.ndarray, max_major: int, start: list[int] | None = None) -> np.ndarray:
    """Wolfe's (1976) min-norm-point algorithm on the Gram matrix ``m`` (max diagonal 1).

    Keeps an affinely independent active set ``S`` and weights ``lam`` (> 0 on ``S``) with
    ``x = G^T lam`` the min-norm point of ``aff(S)``.  Major step: add the vertex ``j`` that
    most violates ``g_j . x >= ||x||^2``.  Minor steps: move towards the affine minimiser of
    ``S``; if it leaves ``conv(S)``, stop at the boundary and drop the vertex that hit zero.
    Each major step strictly decreases ``||x||`` so no active set repeats: finite termination.
    """
    t = m.shape[0]
    diag = np.diag(m).copy()
    norms = np.sqrt(np.clip(diag, 0.0, None))
    warm = _warm_corral(m, start) if start else None
    if warm is not None:
        lam, active = warm
    else:
        lam = np.zeros(t)
        first = int(np.argmin(diag))  # the shortest gradient is the best single vertex
        lam[first] = 1.0
        active = [first]
    prev_obj, prev_lam = np.inf, lam.copy()
    for _ in range(max_major):
        m_x = m[:, active] @ lam[active]  # g_r . x for every r
        obj = float(lam[active] @ m_x[active])  # ||x||^2
        if obj >= prev_obj:
            # No strict decrease, which only roundoff can cause: keep the better point and
            # let the KKT check judge it.
            return prev_lam
        prev_obj, prev_lam = obj, lam.copy()
        violation = (obj - m_x) / _roundoff_scale(diag, lam)
        if violation.max() <= _WOLFE_STOP_EPS:
            break  # x satisfies the optimality conditions
        # Wolfe's rule: the vertex with the smallest g_j . x (steepest improvement).  Any
        # violating vertex keeps the method finite, so when that one's violation is at
        # roundoff level relative to its size, take the worst relative violator instead.
        j = int(np.argmin(m_x))
        if violation[j] <= _WOLFE_STOP_EPS:
            j = int(np.argmax(violation))
        if j in active:
            break  # can only happen through roundoff; the KKT check judges the point
        active.append(j)
        # lam[j] is 0: the current point is in conv(S) with the new vertex at weight 0.
        for _minor in range(len(active) + 1):
            idx = np.asarray(active)
            mu = _affine_minimizer(m[np.ix_(idx, idx)])
            neg = mu <= 0
            # Weights whose contribution to the point is at roundoff level are zeros in exact
            # arithmetic (the minimiser lies on a face of conv(S)): drop those vertices rather
            # than keep a degenerate active set.  Never the vertex just added, which has a
            # positive weight in exact arithmetic.
            contrib = np.abs(mu) * norms[idx]
            negligible = ~neg & (contrib <= _NEGLIGIBLE_WEIGHT * contrib.sum()) & (idx != j)
            if not neg.any() and not negligible.any():
                lam[idx] = mu
                break
            cur = lam[idx]
            theta = 1.0
            drop = np.zeros(len(idx), dtype=bool)
            if neg.any():
                # Largest step from lam towards mu that stays in conv(S): stop where the
                # first weight reaches zero.
                denom = cur[neg] - mu[neg]  # >= 0 since cur >= 0 >= mu there
                ratios = np.where(denom > 0, cur[neg] / np.where(denom > 0, denom, 1.0), 0.0)
                k_block = int(np.argmin(ratios))
                theta = float(np.clip(ratios[k_block], 0.0, 1.0))
                drop[np.flatnonzero(neg)[k_block]] = True
            new = (1.0 - theta) * cur + theta * mu
            drop |= neg & (new <= 1e-15)  # vertices that reached zero together with it
            if theta >= 1.0:
                drop |= negligible
            new[drop] = 0.0
            lam[idx] = new
            active = [int(i) for i, d in zip(idx, drop) if not d]
            if not active:  # cannot happen in exact arithmetic (the weights sum to 1)
                raise MinNormSolverError("min-norm solver: active set became empty")
            lam[active] /= lam[active].sum()
        else:
            raise MinNormSolverError("min-norm solver: Wolfe minor cycle did not terminate")
    return lam


def _verify_kkt(m: np.ndarray, alpha: np.ndarray, tol: float) -> None:
    """Raise unless ``(M alpha)_r >= alpha^T M alpha - tol * scale_r`` for every task ``r``.

    This is the optimality condition of the min-norm point (``g_r . d >= ||d||^2``), and it
    bounds the objective's excess: ``||d||^2 - ||d*||^2 <= 2 max_r violation_r``.
    ``scale_r`` (see :func:`_roundoff_scale`) is the size of the roundoff in these products.
    """
    m_alpha = m @ alpha
    obj = float(alpha @ m_alpha)
    violation = (obj - m_alpha) / _roundoff_scale(np.diag(m), alpha)
    worst = int(np.argmax(violation))
    if violation[worst] > tol:
        raise MinNormSolverError(
            "min-norm solver failed to reach the optimum: KKT condition violated for task "
            f"{worst} (relative violation {violation[worst]:.3e} > tol {tol:.1e})"
        )


def _roundoff_scale(diag: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per task ``r``, the magnitude that roundoff in ``alpha^T M alpha - (M alpha)_r`` scales with.

    With ``w = sum_s alpha_s ||g_s||`` (>= ``||d||``), the terms are bounded by ``||g_r|| w``
    and ``w^2``.  Unlike the largest squared gradient norm this stays meaningful when the
    gradients' norms differ by orders of magnitude, so tolerances relative to it still
    control the objective's relative accuracy.
    """
    norms = np.sqrt(np.clip(diag, 0.0, None))
    w = float(alpha @ norms)
    return np.maximum(norms * w + w * w, np.finfo(np.float64).tiny)
