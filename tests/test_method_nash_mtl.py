"""Nash-MTL against its defining condition and an independent root finder."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

from mtlpareto.errors import TrainingError
from mtlpareto.methods import build_method
from mtlpareto.methods.nash_mtl import nash_weights


def _gram(seed: int, t: int = 4, d: int = 9) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((t, d)) + 0.5
    return g @ g.T


@pytest.mark.parametrize("seed", range(5))
def test_weights_solve_the_bargaining_condition(seed):
    m = _gram(seed)
    alpha = nash_weights(m)
    np.testing.assert_allclose(alpha * (m @ alpha), 1.0, atol=1e-7)
    reference = scipy.optimize.fsolve(lambda a: m @ a - 1.0 / a, np.ones(len(m)) / np.sqrt(np.diag(m)), xtol=1e-13)
    np.testing.assert_allclose(alpha, reference, rtol=1e-6)


def test_scaling_the_gradients_scales_the_weights_inversely():
    m = _gram(7)
    np.testing.assert_allclose(nash_weights(9.0 * m), nash_weights(m) / 3.0, rtol=1e-9)


def test_no_solution_is_an_error():
    g = np.array([[1.0, 0.0], [-1.0, 0.0]])
    with pytest.raises(TrainingError, match="no Nash bargaining solution"):
        nash_weights(g @ g.T)


def test_the_shared_gradient_norm_is_clipped():
    grads = torch.tensor([[3.0, 0.0, 1.0], [0.0, 4.0, 1.0]], dtype=torch.float64)
    method = build_method({"name": "nash_mtl", "max_norm": 0.5}, 2)
    weights = method.combination(grads, torch.ones(2))
    assert float(torch.linalg.vector_norm(weights @ grads)) == pytest.approx(0.5)
    unclipped = torch.from_numpy(nash_weights((grads @ grads.T).numpy()))
    torch.testing.assert_close(weights / weights.sum(), unclipped / unclipped.sum())


def test_correlated_gradients_of_very_different_norms_reach_the_tolerance():
    # Positively correlated gradients (a solution exists) with norms over six orders of magnitude.
    # An Armijo test on objective values only saw roundoff near the solution and stalled the
    # residual at ~1.1e-8, just above the tolerance (it stopped a MultiFashion run): these
    # 10,000 draws held three such cases.
    rng = np.random.default_rng(0)
    for _ in range(10_000):
        t = int(rng.integers(2, 6))
        d = int(rng.integers(t, 50))
        g = rng.standard_normal(d) + 10.0 ** rng.uniform(-8, 0) * rng.standard_normal((t, d))
        g *= 10.0 ** rng.uniform(-3, 3, size=(t, 1))
        m = g @ g.T
        alpha = nash_weights(m)
        assert np.all(alpha > 0)
        np.testing.assert_allclose(alpha * (m @ alpha), 1.0, atol=1e-7)
