"""Aligned-MTL: the aligned gradients are orthogonal with equal norms (the paper's definition)."""

from __future__ import annotations

import numpy as np
import pytest

from mtlpareto.methods.aligned_mtl import aligned_weights


@pytest.mark.parametrize("seed", range(4))
def test_aligned_system_is_orthogonal_with_the_smallest_singular_value(seed):
    g = np.random.default_rng(seed).standard_normal((3, 7)) * np.array([[1.0], [5.0], [0.2]])
    m = g @ g.T
    eigval, eigvec = np.linalg.eigh(m)
    sigma_min = np.sqrt(eigval.min())
    b = sigma_min * (eigvec / np.sqrt(eigval)) @ eigvec.T  # the reference construction, written out
    aligned = b @ g
    np.testing.assert_allclose(aligned @ aligned.T, sigma_min**2 * np.eye(3), atol=1e-9)
    np.testing.assert_allclose(aligned_weights(m) @ g, aligned.sum(axis=0), atol=1e-9)


def test_orthogonal_gradients_of_equal_norm_are_summed_unchanged():
    g = 2.0 * np.eye(3, 5)
    np.testing.assert_allclose(aligned_weights(g @ g.T), np.ones(3), atol=1e-12)
