"""Update directions of preference-conditioned training, as weights on the task losses.

All directions here are linear combinations of the task gradients d = sum alpha_t grad L_t,
so a method returns alpha and one backward pass (or alpha^T J when the Jacobian J is already
computed) applies it.  Gradients are w.r.t. the hypernetwork's parameters.

Preference convention (shared by every method, the hypernetwork input and `predict`): a
preference p on the simplex is the relative *importance* of the tasks; raising p_t lowers
L_t.  That is the meaning of linear scalarisation (min sum p_t L_t) and of EPO (the loss
vector on the ray p_1 L_1 = ... = p_T L_T).  Controllable Pareto MTL states its preference as
a unit vector u in loss space (the solution's loss vector points along u); we take
u = normalise(1 / p), so it targets the same ray as EPO (for two tasks u ~ (p_2, p_1)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mtlpareto.errors import MTLParetoError
from mtlpareto.solvers import min_norm_weights_from_gram


class DirectionError(MTLParetoError):
    """A direction sub-problem (min-norm QP or EPO LP) could not be solved."""


# --------------------------------------------------------------------------- preferences


def loss_space_direction(preference: torch.Tensor) -> torch.Tensor:
    """Unit vectors u ~ 1 / p in loss space for preferences p [..., T] on the simplex.

    Exact limit for zero entries: the zero-importance tasks share the whole direction
    (u = indicator(p == 0), normalised).
    """
    p = preference.to(torch.float64)
    zero = p <= 0
    inv = torch.where(zero, torch.zeros_like(p), 1.0 / p.clamp_min(torch.finfo(torch.float64).tiny))
    u = torch.where(zero.any(-1, keepdim=True), zero.to(p), inv)
    return u / u.norm(dim=-1, keepdim=True)


def sample_unit_references(rng: np.random.Generator, k: int, n_tasks: int) -> torch.Tensor:
    """k reference vectors uniform on the unit sphere's non-negative orthant [k, T] (float64).

    |N(0, I)| normalised is uniform on that part of the sphere (the paper: "simple uniform
    distribution" on unit reference vectors).
    """
    g = np.abs(rng.standard_normal((k, n_tasks)))
    g = np.where(g.sum(1, keepdims=True) > 0, g, 1.0)
    return torch.from_numpy(g / np.linalg.norm(g, axis=1, keepdims=True))


# --------------------------------------------------------------------------- controllable Pareto MTL


@dataclass
class CtrlParetoDirection:
    """Result of `ctrl_pareto_weights`.

    weights: [n, T] loss weights alpha (sum |alpha| = 1), the direction is alpha^T J;
    dual: the min-norm weights over the hull's rows (lambda for tasks, beta for constraints);
    constraint_rows: [C, n*T] coefficients of the active constraints' gradients on the task
    gradients; active: (preference index, reference index) of each active constraint;
    restored: preferences that took the feasibility step (see ctrl_pareto_weights).
    """

    weights: torch.Tensor
    dual: torch.Tensor
    constraint_rows: torch.Tensor
    active: list[tuple[int, int]] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)


def constraint_rows(losses: torch.Tensor, preferences: torch.Tensor, references: torch.Tensor | None) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Active preference-region constraints as rows over the n*T task losses.

    For preference i with loss-space direction u_i and reference unit vectors r_j (the shared
    random ones, then the other preferences' directions, Lin et al. App. A.3), the loss vector
    L_i has a smaller angle to u_i than to r_j  <=>  G_ij = (r_j - u_i)^T L_i <= 0 (all unit
    vectors).  A constraint is active when G_ij >= 0; its gradient is (r_j - u_i)^T J_i, a
    combination of task gradients, so only its coefficient row is returned.
    """
    n, t = losses.shape
    u = loss_space_direction(preferences).numpy()  # [n, T]
    refs = references.to(torch.float64).numpy() if references is not None else np.zeros((0, t))
    values_l = losses.detach().to(torch.float64).cpu().numpy()
    rows, active = [], []
    for i in range(n):
        diff = np.concatenate([refs, np.delete(u, i, axis=0)]) - u[i]  # [R, T]
        for j in np.flatnonzero(diff @ values_l[i] >= 0):
            row = np.zeros(n * t)
            row[i * t : (i + 1) * t] = diff[j]
            rows.append(row)
            active.append((i, int(j)))
    return torch.from_numpy(np.array(rows).reshape(len(rows), n * t)), active


def _min_norm(a: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """Min-norm weights w over the vectors A J, from the Gram matrix M = J J^T."""
    # Constraint gradients are combinations of the task gradients, so A M A^T is
    # rank-deficient by construction; a relative KKT tolerance of 1e-8 absorbs the float32
    # roundoff of the Jacobian.
    return min_norm_weights_from_gram(a @ gram @ a.T, tol=1e-8)


def task_stationarity(gram: torch.Tensor) -> float:
    """MGDA's ||d*||^2 over the mean squared task-gradient norm (0: Pareto stationary).

    Tasks with a zero gradient (e.g. absent from the mini-batch) are left out: they would
    make every point look stationary.
    """
    present = torch.diagonal(gram) > 0
    if int(present.sum()) < 2:
        return 1.0
    sub = gram[present][:, present]
    w = min_norm_weights_from_gram(sub, tol=1e-8)
    return float(w @ sub @ w) / float(torch.diagonal(sub).mean())


def ctrl_pareto_weights(
    gram: torch.Tensor,
    losses: torch.Tensor,
    preferences: torch.Tensor,
    references: torch.Tensor | None,
    restore_below: float = 0.0,
) -> CtrlParetoDirection:
    """Descent direction of preference-conditioned MOO (Lin et al. 2020, App. A.1-A.3).

    Solves the dual of min_{d, a} a + ||d||^2 / 2 s.t. grad L_k^T d <= a, grad G_j^T d <= a
    (j active), i.e. the min-norm point of the convex hull of the task gradients and the
    active constraints' gradients, with the exact min-norm solver on the Gram matrix
    A (J J^T) A^T, A = [task rows; constraint rows].  Returns task weights alpha = A^T w,
    scaled to sum |alpha| = 1 (Pareto MTL rescales the same way) so step sizes match linear
    scalarisation's.

    Feasibility step (our addition, `restore_below`): the descent lemma (App. A.1) makes
    d = 0 mean "restricted Pareto critical" only for a solution inside its preferred region.
    A solution that reaches the Pareto front outside it is stuck there: its task gradients
    oppose each other and every constraint gradient lies in their span, so 0 is in the hull.
    So a preference whose own task gradients are (nearly) Pareto stationary - MGDA's
    ||d*||^2 below `restore_below` x their mean squared norm - and whose loss vector violates
    a constraint (G_ij > 0) contributes only its violated constraints: Pareto MTL's search for
    a feasible solution (Lin et al. 2019, Sec. 4.2).  Measured ratios: 1e-4..1e-8 on the
    synthetic problem's front, ~0.4 on MultiMNIST (tasks far from stationary: a threshold of
    1e-3 never triggered there).  The feasibility step ignores the losses, so a large
    threshold can push solutions off the front (one of three synthetic seeds diverged with
    1e-3 at lr 0.01); the synthetic experiment uses 1e-4.  restore_below = 0 (the default)
    is the paper's plain combined direction.

    gram: [n*T, n*T] task-gradient Gram matrix J J^T (rows ordered preference-major);
    losses, preferences: [n, T]; references: [K, T] unit vectors (or None).
    """
    n, t = losses.shape
    if gram.shape != (n * t, n * t):
        raise DirectionError(f"gram has shape {tuple(gram.shape)}, expected {(n * t, n * t)} for {n} preferences x {t} tasks")
    gram = gram.to(torch.float64)
    rows, active = constraint_rows(losses, preferences, references)
    flat_losses = losses.detach().reshape(-1).to(torch.float64).cpu()
    restoring = set()
    if restore_below > 0:
        violating = {i for (i, _), row in zip(active, rows) if float(row @ flat_losses) > 0}
        for i in sorted(violating):
            block = gram[i * t : (i + 1) * t, i * t : (i + 1) * t]
            if task_stationarity(block) < restore_below:
                restoring.add(i)
    keep = [k for k in range(n * t) if k // t not in restoring]
    a = torch.cat([torch.eye(n * t, dtype=torch.float64)[keep], rows], dim=0)
    dual = _min_norm(a, gram)
    alpha = a.T @ dual
    total = float(alpha.abs().sum())
    if not total > 0:
        raise DirectionError("ctrl_pareto: the dual weights cancel to zero; cannot form a direction")
    return CtrlParetoDirection((alpha / total).reshape(n, t), dual, rows, active, sorted(restoring))


# --------------------------------------------------------------------------- EPO


@dataclass
class EPODirection:
    weights: np.ndarray  # [T] on the simplex
    mode: str  # "balance", "descent" or "descent_relaxed"
    non_uniformity: float


def _non_uniformity(l_hat: np.ndarray) -> float:
    """mu(r.L) of EPO: KL divergence of the normalised weighted losses from uniform."""
    m = len(l_hat)
    keep = l_hat > np.finfo(np.float64).eps
    return float(np.sum(l_hat[keep] * np.log(l_hat[keep] * m)))


def _solve_lp(c: np.ndarray, a_ub: np.ndarray | None, b_ub: np.ndarray | None, m: int) -> np.ndarray | None:
    """max c^T alpha on the simplex with A_ub alpha <= b_ub; None when infeasible."""
    from scipy.optimize import linprog  # lazy: scipy's import costs ~1 s in every job that never needs it

    res = linprog(
        -c,
        A_ub=a_ub if a_ub is not None and len(a_ub) else None,
        b_ub=b_ub if b_ub is not None and len(b_ub) else None,
        A_eq=np.ones((1, m)),
        b_eq=np.ones(1),
        bounds=[(0, None)] * m,
        method="highs",
    )
    if res.status == 2:
        return None
    if res.status != 0:
        raise DirectionError(f"EPO linear program failed: {res.message} (status {res.status})")
    alpha = np.clip(res.x, 0.0, None)
    return alpha / alpha.sum()


def epo_weights(losses: np.ndarray, gram: np.ndarray, preference: np.ndarray, eps: float = 1e-4) -> EPODirection:
    """Exact Pareto Optimal search direction (Mahapatra & Rajan 2020, Alg. 1 / their epo_lp.py).

    With C = G G^T, rl = r * L, l_hat = rl / sum rl, mu = KL(l_hat || uniform) and the
    adjustment a = r * (log(T l_hat) - mu):
    * mu > eps ("balance"): max alpha^T C a on the simplex s.t. (C alpha)_j >= (C a)_j for
      every j with (C a)_j <= 0, and (C alpha)_j* >= 0 for j* = argmax rl (when some
      (C a)_j > 0; otherwise C alpha >= 0) - moves the losses onto the preference ray;
    * else ("descent"): max sum C alpha s.t. C alpha >= 0 and alpha^T C a >= min(max C a, 0)
      - descends all losses while staying on the ray.  If that restricted LP is infeasible,
      EPO's own relaxation (without the last constraint) is solved and the mode says so.
    An infeasible balance LP raises DirectionError: no silent fallback to fixed weights.
    The preference r is the importance of each task (the solution has r_t L_t equal).
    """
    losses = np.asarray(losses, dtype=np.float64)
    r = np.asarray(preference, dtype=np.float64)
    c_mat = np.asarray(gram, dtype=np.float64)
    m = len(losses)
    if c_mat.shape != (m, m) or r.shape != (m,):
        raise DirectionError(f"EPO: shapes losses {losses.shape}, gram {c_mat.shape}, preference {r.shape} do not match")
    if not (np.isfinite(losses).all() and np.isfinite(c_mat).all()):
        raise DirectionError("EPO: non-finite losses or gradients")
    if (losses < 0).any():
        raise DirectionError(f"EPO needs non-negative losses, got {losses.tolist()}")
    # log(T l_hat) is -inf at a zero weighted loss (a zero preference or a solved task);
    # a tiny floor keeps the adjustment finite and still pointing away from that task.
    rl = np.maximum(r * losses, 1e-12)
    l_hat = rl / rl.sum()
    mu = _non_uniformity(l_hat)
    adjust = r * (np.log(l_hat * m) - mu)
    ca = c_mat @ adjust
    if mu > eps:
        positive = ca > 0
        if positive.any():
            rhs = ca.copy()
            rhs[positive] = -np.inf
            rhs[rl == rl.max()] = 0.0
        else:
            rhs = np.zeros(m)
        keep = np.isfinite(rhs)
        # C alpha >= rhs  <=>  -C alpha <= -rhs
        alpha = _solve_lp(ca, -c_mat[keep], -rhs[keep], m)
        if alpha is None:
            raise DirectionError(f"EPO balance LP is infeasible (losses {losses.tolist()}, preference {r.tolist()})")
        return EPODirection(alpha, "balance", mu)
    objective = c_mat.sum(axis=0)  # sum_j (C alpha)_j = 1^T C alpha
    a_res = np.vstack([-c_mat, -ca[None, :]])
    b_res = np.concatenate([np.zeros(m), [-min(float(ca.max()), 0.0)]])
    alpha = _solve_lp(objective, a_res, b_res, m)
    if alpha is not None:
        return EPODirection(alpha, "descent", mu)
    alpha = _solve_lp(objective, -c_mat, np.zeros(m), m)
    if alpha is None:  # C alpha >= 0 always holds at the min-norm point: cannot happen
        raise DirectionError("EPO relaxed descent LP is infeasible")
    return EPODirection(alpha, "descent_relaxed", mu)
