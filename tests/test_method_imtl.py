"""IMTL-G: equal projections on every unit gradient, against the formula in parameter space."""

from __future__ import annotations

import numpy as np
import pytest

from mtlpareto.methods.imtl import imtl_weights


def _reference(g: np.ndarray) -> np.ndarray:
    """The paper's closed form with the matrices built explicitly (D = g_1 - g_t, U = u_1 - u_t)."""
    u = g / np.linalg.norm(g, axis=1, keepdims=True)
    d, uu = g[0:1] - g[1:], u[0:1] - u[1:]
    rest = g[0] @ uu.T @ np.linalg.inv(d @ uu.T)
    return np.concatenate([[1.0 - rest.sum()], rest])


@pytest.mark.parametrize("seed", range(5))
def test_weights_match_the_closed_form_and_are_impartial(seed):
    g = np.random.default_rng(seed).standard_normal((4, 10)) * np.array([[1.0], [3.0], [0.5], [2.0]])
    alpha = imtl_weights(g @ g.T)
    np.testing.assert_allclose(alpha, _reference(g), rtol=1e-8, atol=1e-10)
    assert alpha.sum() == pytest.approx(1.0)
    d = alpha @ g
    projections = (g / np.linalg.norm(g, axis=1, keepdims=True)) @ d
    np.testing.assert_allclose(projections, projections[0], rtol=1e-8)
