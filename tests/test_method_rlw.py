"""RLW: against an independent reference (a hand-written formula, a brute-force solve, or the problem's known optimum)."""

from __future__ import annotations

import pytest
import torch

from mtlpareto.methods import StepContext, build_method

from method_helpers import _mtl, _forward, _data


def _rlw_draws(seed: int, n: int = 5) -> list[torch.Tensor]:
    model = _mtl(n_tasks=3)
    method = build_method({"name": "rlw", "seed": seed}, n_tasks=3)
    out = []
    for step in range(n):
        model.zero_grad()
        losses, z = _forward(model, *_data(step, n_tasks=3))
        out.append(method.backward(StepContext(model, losses, z, step=step)))
    return out


def test_rlw_weights_are_random_points_of_the_simplex_reproducible_by_seed():
    a, b, c = _rlw_draws(7), _rlw_draws(7), _rlw_draws(8)
    for w in a:
        assert torch.all(w > 0) and float(w.sum()) == pytest.approx(1.0)
    assert all(not torch.allclose(a[i], a[i + 1]) for i in range(len(a) - 1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.allclose(x, y) for x, y in zip(a, c))


def test_rlw_default_seed_is_the_runs_seed():
    torch.manual_seed(11)
    first = build_method({"name": "rlw"}, n_tasks=3).draw()
    torch.manual_seed(11)
    again = build_method({"name": "rlw"}, n_tasks=3).draw()
    torch.manual_seed(12)
    other = build_method({"name": "rlw"}, n_tasks=3).draw()
    assert torch.equal(first, again) and not torch.equal(first, other)
