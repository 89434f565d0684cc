"""Tests of the MGDA min-norm solver against independent references.

References (none shares code with the solver):
* brute force over supports: for every support S solve the equality-constrained KKT system
  of ``min alpha^T M alpha s.t. sum alpha = 1`` and keep the feasible (non-negative) solutions;
  the optimum is the affine minimiser of its own (affinely independent) support, so the
  smallest feasible objective is the exact optimum.  Used for T <= 10.
* Lawson-Hanson NNLS (scipy): ``min_{w >= 0} ||G^T w||^2 + (1 - 1^T w)^2`` has the solution
  ``w = alpha* / (1 + f*)``, so ``alpha* = w / sum(w)``; works on G itself, not on the Gram.
* SLSQP (scipy) with several starts, for the largest T as a second opinion.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.optimize
import torch

from mtlpareto.solvers import MinNormSolverError, min_norm_weights, min_norm_weights_from_gram
from mtlpareto.solvers import min_norm as min_norm_module

REL_TOL = 1e-6
ABS_TOL = 1e-12


# --------------------------------------------------------------------------- references


def objective(g: np.ndarray, alpha: np.ndarray) -> float:
    """||sum_t alpha_t g_t||^2 computed on G itself (not through the Gram matrix)."""
    d = g.T @ np.asarray(alpha, dtype=np.float64)
    return float(d @ d)


def _to_simplex(a: np.ndarray) -> np.ndarray:
    a = np.clip(a, 0.0, None)
    return a / a.sum()


def brute_force_qp(g: np.ndarray) -> tuple[float, np.ndarray]:
    t = g.shape[0]
    m = g @ g.T
    best, best_alpha = np.inf, None
    for k in range(1, t + 1):
        for support in itertools.combinations(range(t), k):
            s = list(support)
            kkt = np.zeros((k + 1, k + 1))
            kkt[:k, :k] = m[np.ix_(s, s)]
            kkt[:k, k] = 1.0
            kkt[k, :k] = 1.0
            rhs = np.zeros(k + 1)
            rhs[k] = 1.0
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
            if not np.allclose(kkt @ sol, rhs, atol=1e-9):
                continue
            mu = sol[:k]
            if mu.min() < -1e-12:
                continue
            alpha = np.zeros(t)
            alpha[s] = mu
            alpha = _to_simplex(alpha)
            value = objective(g, alpha)
            if value < best:
                best, best_alpha = value, alpha
    return best, best_alpha


def nnls_qp(g: np.ndarray) -> tuple[float, np.ndarray]:
    t, d = g.shape
    a = np.vstack([g.T, np.ones((1, t))])
    b = np.zeros(d + 1)
    b[-1] = 1.0
    w, _ = scipy.optimize.nnls(a, b, maxiter=100 * t)
    alpha = _to_simplex(w)
    return objective(g, alpha), alpha


def slsqp_qp(g: np.ndarray, starts: int = 2, seed: int = 0) -> tuple[float, np.ndarray]:
    t = g.shape[0]
    m = g @ g.T
    rng = np.random.default_rng(seed)
    best, best_alpha = np.inf, None
    for i in range(starts):
        x0 = np.full(t, 1.0 / t) if i == 0 else rng.dirichlet(np.ones(t))
        res = scipy.optimize.minimize(
            lambda a: a @ m @ a,
            x0,
            jac=lambda a: 2.0 * m @ a,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * t,
            constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1.0, "jac": lambda a: np.ones_like(a)}],
            options={"ftol": 1e-16, "maxiter": 1000},
        )
        alpha = _to_simplex(res.x)
        value = objective(g, alpha)
        if value < best:
            best, best_alpha = value, alpha
    return best, best_alpha


def reference_optimum(g: np.ndarray) -> float:
    values = [nnls_qp(g)[0]]
    if g.shape[0] <= 10:
        values.append(brute_force_qp(g)[0])
    else:
        values.append(slsqp_qp(g)[0])
    return min(values)


def solve(g: np.ndarray, **kwargs) -> np.ndarray:
    alpha = min_norm_weights(torch.from_numpy(g), **kwargs)
    assert isinstance(alpha, torch.Tensor)
    return alpha.numpy()


def assert_simplex(alpha: np.ndarray, t: int) -> None:
    assert alpha.shape == (t,)
    assert np.all(alpha >= 0.0)
    assert abs(alpha.sum() - 1.0) < 1e-12


def assert_optimal(g: np.ndarray, alpha: np.ndarray, reference: float) -> None:
    value = objective(g, alpha)
    assert abs(value - reference) <= REL_TOL * reference + ABS_TOL, (value, reference)


def assert_descent_direction(g: np.ndarray, alpha: np.ndarray, rel: float = 1e-9) -> None:
    """KKT property of the min-norm point: g_t . d >= ||d||^2 for every task."""
    d = g.T @ alpha
    scale = float((g * g).sum(axis=1).max())
    assert np.all(g @ d >= d @ d - rel * scale), (g @ d - d @ d).min()


# --------------------------------------------------------------------------- the references


def test_references_agree_with_each_other():
    """The references are only useful if they are exact; cross-check them."""
    rng = np.random.default_rng(11)
    for t, d in [(3, 5), (6, 4), (8, 50), (5, 2)]:
        g = rng.standard_normal((t, d)) + rng.standard_normal(d)
        brute = brute_force_qp(g)[0]
        assert nnls_qp(g)[0] == pytest.approx(brute, rel=1e-9, abs=1e-13)
        assert slsqp_qp(g)[0] == pytest.approx(brute, rel=1e-5, abs=1e-10)


# --------------------------------------------------------------------------- exact vs references


@pytest.mark.parametrize("t", [1, 2, 3, 10, 40])
@pytest.mark.parametrize("d", [5, 100, 1000])
def test_exact_matches_reference_qp_random(t, d):
    rng = np.random.default_rng(1000 * t + d)
    for trial in range(2):
        g = rng.standard_normal((t, d))
        if trial == 1:
            g = g + 2.0 * rng.standard_normal(d)  # shared component: optimum away from 0
        alpha = solve(g)
        assert_simplex(alpha, t)
        assert_optimal(g, alpha, reference_optimum(g))
        assert_descent_direction(g, alpha)


def test_exact_matches_reference_with_very_different_gradient_norms():
    rng = np.random.default_rng(5)
    for t, d in [(4, 10), (8, 50), (20, 100), (40, 30)]:
        g = rng.standard_normal((t, d)) * np.exp(rng.uniform(-5.0, 5.0, size=(t, 1)))
        alpha = solve(g)
        assert_simplex(alpha, t)
        assert_optimal(g, alpha, reference_optimum(g))


def test_exact_small_integer_gradients_with_many_ties():
    """Lattice gradients: duplicates, collinear and coplanar subsets, ties in every choice."""
    rng = np.random.default_rng(9)
    for _ in range(40):
        t = int(rng.integers(2, 9))
        d = int(rng.integers(1, 4))
        g = rng.integers(-1, 2, size=(t, d)).astype(np.float64)
        alpha = solve(g)
        assert_simplex(alpha, t)
        assert_optimal(g, alpha, brute_force_qp(g)[0])


# --------------------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize("t", [2, 5, 40])
def test_collinear_with_both_signs_reaches_zero(t):
    rng = np.random.default_rng(t)
    v = rng.standard_normal(100)
    coef = rng.uniform(0.5, 2.0, size=t)
    coef[: t // 2] *= -1.0  # both signs present -> 0 is in the hull
    g = np.outer(coef, v)
    alpha = solve(g)
    assert_simplex(alpha, t)
    assert objective(g, alpha) <= ABS_TOL


@pytest.mark.parametrize("t", [2, 5, 40])
def test_collinear_same_sign_picks_shortest(t):
    rng = np.random.default_rng(100 + t)
    v = rng.standard_normal(7)
    coef = rng.uniform(0.5, 3.0, size=t)
    g = np.outer(coef, v)
    alpha = solve(g)
    assert_simplex(alpha, t)
    expected = coef.min() ** 2 * float(v @ v)
    assert objective(g, alpha) == pytest.approx(expected, rel=REL_TOL)
    assert alpha[np.argmin(coef)] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("t,d", [(3, 5), (10, 100), (40, 1000), (40, 5)])
def test_one_zero_gradient_gives_zero_objective(t, d):
    rng = np.random.default_rng(7 * t + d)
    g = rng.standard_normal((t, d)) + 3.0 * rng.standard_normal(d)
    zero_row = t // 2
    g[zero_row] = 0.0
    alpha = solve(g)
    assert_simplex(alpha, t)
    assert objective(g, alpha) <= ABS_TOL
    if t <= d:  # the other rows are linearly independent: alpha = e_zero is the only optimum
        assert alpha[zero_row] == pytest.approx(1.0, abs=1e-9)


def test_all_zero_gradients():
    alpha = solve(np.zeros((4, 6)))
    assert_simplex(alpha, 4)


@pytest.mark.parametrize("t,d", [(4, 20), (10, 1000), (7, 3)])
def test_duplicated_gradients(t, d):
    rng = np.random.default_rng(t * d)
    base = rng.standard_normal((t, d)) + 1.5 * rng.standard_normal(d)
    groups = np.concatenate([np.arange(t), rng.integers(0, t, size=2 * t)])
    g = base[groups]
    alpha = solve(g)
    assert_simplex(alpha, len(groups))
    reference = reference_optimum(base)
    assert_optimal(g, alpha, reference)
    assert_descent_direction(g, alpha)
    if t <= d:  # base has a unique optimum: duplicates must share exactly its weight
        merged = np.bincount(groups, weights=alpha, minlength=t)
        np.testing.assert_allclose(merged, solve(base), atol=1e-8)


@pytest.mark.parametrize("t,d", [(3, 10), (10, 100), (40, 1000)])
def test_zero_in_hull_interior_gives_uniform(t, d):
    """Centred rows (T <= D) sum to 0 and are otherwise independent: the unique optimum is 1/T."""
    rng = np.random.default_rng(t + d)
    g = rng.standard_normal((t, d))
    g = g - g.mean(axis=0)
    alpha = solve(g)
    assert objective(g, alpha) <= ABS_TOL
    np.testing.assert_allclose(alpha, np.full(t, 1.0 / t), atol=1e-8)


def test_zero_in_hull_interior_more_tasks_than_dims():
    rng = np.random.default_rng(3)
    for t, d in [(10, 5), (40, 5), (40, 2)]:
        g = rng.standard_normal((t, d))
        g = g - g.mean(axis=0)
        alpha = solve(g)
        assert_simplex(alpha, t)
        assert objective(g, alpha) <= ABS_TOL


def test_single_task_returns_one():
    for method in ("exact", "frank_wolfe"):
        for g in (torch.randn(1, 5, generator=torch.Generator().manual_seed(0)), torch.zeros(1, 3)):
            alpha = min_norm_weights(g, method=method)
            assert alpha.tolist() == [1.0]


# --------------------------------------------------------------------------- T = 2 closed form


def closed_form_two(g1: np.ndarray, g2: np.ndarray) -> float:
    """alpha_1 of the paper's two-task solution (Sec. 3.1 / Algorithm 1)."""
    return float(np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0))


@pytest.mark.parametrize("method", ["exact", "frank_wolfe"])
def test_two_tasks_closed_form(method):
    rng = np.random.default_rng(2)
    cases = [rng.standard_normal((2, d)) for d in (1, 5, 100, 1000) for _ in range(3)]
    v = rng.standard_normal(10)
    cases += [
        np.stack([0.5 * v, v]),  # g1 inside the segment's shorter end: alpha_1 = 1
        np.stack([v, 0.3 * v]),  # alpha_1 = 0
        np.stack([v + 0.1 * rng.standard_normal(10), -v]),
    ]
    for g in cases:
        expected = closed_form_two(g[0], g[1])
        alpha = solve(g, method=method)
        assert_simplex(alpha, 2)
        assert alpha[0] == pytest.approx(expected, abs=1e-9)


# --------------------------------------------------------------------------- Frank-Wolfe


def test_frank_wolfe_first_step_is_the_papers_line_search():
    """One iteration from the uniform start: vertex argmin_r (M alpha)_r, Algorithm 1 step."""
    rng = np.random.default_rng(4)
    g = rng.standard_normal((6, 30)) + rng.standard_normal(30)
    alpha0 = np.full(6, 1.0 / 6)
    theta = g.T @ alpha0
    t_hat = int(np.argmin(g @ theta))
    theta_bar = g[t_hat]
    gamma = np.clip((theta_bar - theta) @ theta_bar / ((theta - theta_bar) @ (theta - theta_bar)), 0.0, 1.0)
    expected = gamma * alpha0
    expected[t_hat] += 1.0 - gamma
    np.testing.assert_allclose(solve(g, method="frank_wolfe", max_iter=1), expected, atol=1e-12)


def test_frank_wolfe_with_small_cap_is_feasible_and_not_better_than_exact():
    rng = np.random.default_rng(6)
    for t, d in [(3, 5), (10, 100), (40, 1000), (40, 5)]:
        g = rng.standard_normal((t, d)) + rng.standard_normal(d)
        exact = objective(g, solve(g))
        previous = np.inf
        for cap in (1, 2, 3, 5, 10):
            alpha = solve(g, method="frank_wolfe", max_iter=cap)
            assert_simplex(alpha, t)
            value = objective(g, alpha)
            assert value >= exact - 1e-12 * max(1.0, exact)
            assert value <= previous + 1e-12 * max(1.0, value)  # exact line search: monotone
            previous = value


def test_frank_wolfe_approaches_exact_on_well_conditioned_problem():
    rng = np.random.default_rng(8)
    g = rng.standard_normal((5, 50)) + 2.0 * rng.standard_normal(50)
    exact_alpha = solve(g)
    exact = objective(g, exact_alpha)
    few = objective(g, solve(g, method="frank_wolfe", max_iter=3))
    many_alpha = solve(g, method="frank_wolfe", max_iter=20000, tol=0.0)
    many = objective(g, many_alpha)
    assert exact <= many * (1 + 1e-12) and many <= few  # exact up to roundoff
    assert many == pytest.approx(exact, rel=1e-5)
    np.testing.assert_allclose(many_alpha, exact_alpha, atol=1e-2)


# --------------------------------------------------------------------------- descent property


def test_result_is_a_descent_direction_for_every_task():
    rng = np.random.default_rng(10)
    for t, d in [(2, 5), (3, 100), (10, 5), (10, 1000), (40, 100), (40, 5)]:
        g = rng.standard_normal((t, d)) + rng.uniform(0, 3) * rng.standard_normal(d)
        alpha = solve(g)
        assert_descent_direction(g, alpha)
        direction = g.T @ alpha
        if direction @ direction > 1e-12:
            # -d decreases every task's loss to first order.
            assert np.all(g @ direction > 0)


# --------------------------------------------------------------------------- API details


def test_dtype_device_and_autograd_inputs():
    gen = torch.Generator().manual_seed(0)
    g32 = torch.randn(4, 9, generator=gen, requires_grad=True)
    alpha = min_norm_weights(g32)
    assert alpha.dtype == torch.float32 and alpha.device == g32.device
    assert not alpha.requires_grad
    assert torch.all(alpha >= 0) and abs(float(alpha.sum()) - 1.0) < 1e-6
    np.testing.assert_allclose(alpha.numpy(), solve(g32.detach().double().numpy()), atol=1e-6)
    g_int = torch.tensor([[1, 0], [0, 1]])
    alpha_int = min_norm_weights(g_int)
    assert alpha_int.dtype == torch.float64
    np.testing.assert_allclose(alpha_int.numpy(), [0.5, 0.5], atol=1e-12)


def test_from_gram_matches_and_accepts_arrays():
    rng = np.random.default_rng(12)
    g = rng.standard_normal((7, 20)) + rng.standard_normal(20)
    gram = g @ g.T
    expected = solve(g)
    for given in (gram, torch.from_numpy(gram), gram.tolist(), torch.from_numpy(gram).float()):
        alpha = min_norm_weights_from_gram(given)
        assert alpha.dtype == torch.float64
        np.testing.assert_allclose(alpha.numpy(), expected, atol=1e-5 if isinstance(given, torch.Tensor) and given.dtype == torch.float32 else 1e-10)
    fw = min_norm_weights_from_gram(gram, method="frank_wolfe", max_iter=7)
    np.testing.assert_allclose(fw.numpy(), solve(g, method="frank_wolfe", max_iter=7), atol=1e-12)


def test_invariances():
    rng = np.random.default_rng(13)
    g = rng.standard_normal((8, 30)) + rng.standard_normal(30)
    alpha = solve(g)
    np.testing.assert_allclose(solve(1e-6 * g), alpha, atol=1e-9)
    np.testing.assert_allclose(solve(1e6 * g), alpha, atol=1e-9)
    perm = rng.permutation(8)
    np.testing.assert_allclose(solve(g[perm]), alpha[perm], atol=1e-9)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "grads,match",
    [
        (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), "NaN/inf"),
        (torch.tensor([[1.0, float("inf")], [0.0, 1.0]]), "NaN/inf"),
        (torch.ones(3), r"2-D tensor \[T, D\].*\(3,\)"),
        (torch.ones(2, 3, 4), r"2-D tensor \[T, D\].*\(2, 3, 4\)"),
        (torch.ones(0, 3), "at least one task"),
    ],
)
def test_invalid_grads_raise(grads, match):
    with pytest.raises(MinNormSolverError, match=match):
        min_norm_weights(grads)


def test_invalid_options_and_gram_raise():
    g = torch.eye(3)
    with pytest.raises(MinNormSolverError, match="unknown min-norm method"):
        min_norm_weights(g, method="newton")
    with pytest.raises(MinNormSolverError, match="max_iter"):
        min_norm_weights(g, max_iter=0)
    with pytest.raises(MinNormSolverError, match="torch.Tensor"):
        min_norm_weights(np.eye(3))
    with pytest.raises(MinNormSolverError, match="square"):
        min_norm_weights_from_gram(np.ones((2, 3)))
    with pytest.raises(MinNormSolverError, match="NaN/inf"):
        min_norm_weights_from_gram(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(MinNormSolverError, match="positive semi-definite"):
        min_norm_weights_from_gram(np.array([[1.0, 2.0], [2.0, 1.0]]))


def test_non_optimal_result_is_never_returned(monkeypatch):
    """The KKT check must reject a point the inner solver got wrong instead of returning it."""
    rng = np.random.default_rng(14)
    g = rng.standard_normal((5, 10)) + rng.standard_normal(10)
    bad = np.zeros(5)
    bad[int(np.argmax((g * g).sum(axis=1)))] = 1.0  # the longest gradient: never optimal here
    monkeypatch.setattr(min_norm_module, "_wolfe_min_norm_point", lambda m, max_major, start=None: bad.copy())
    with pytest.raises(MinNormSolverError, match="KKT"):
        min_norm_weights(torch.from_numpy(g))


@pytest.mark.parametrize("seed", range(6))
def test_a_warm_start_reaches_the_same_optimum(seed):
    """Starting from another problem's support (valid or not) changes nothing but the path."""
    rng = np.random.default_rng(40 + seed)
    g = rng.standard_normal((12, 30)) + (seed % 3) * rng.standard_normal(30)
    cold = solve(g)
    previous = solve(g + 0.3 * rng.standard_normal(g.shape))
    for start in ([int(i) for i in np.flatnonzero(previous > 0)], [0, 1, 2], list(range(12)), [5]):
        warm = solve(g, start=start)
        assert_simplex(warm, 12)
        assert objective(g, warm) == pytest.approx(objective(g, cold), rel=1e-10, abs=1e-14)
        np.testing.assert_allclose(warm @ g, cold @ g, atol=1e-9)  # the min-norm point is unique
