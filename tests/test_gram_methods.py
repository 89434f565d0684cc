"""Properties shared by the Gram-based methods (methods/gram.py), checked per method's claims.

Every registered `GramMethod` declares what it guarantees; each claim is checked here on
random gradients against its definition, so a new method of this family is covered by
declaring its claims.
"""

from __future__ import annotations

import pytest
import torch

from mtlpareto.methods import METHODS, build_method
from mtlpareto.methods.gram import GramMethod

GRAM_METHODS = [name for name in METHODS.names() if issubclass(METHODS.get(name), GramMethod)]


def _method(name: str, n_tasks: int) -> GramMethod:
    options = {"normalization": "none"} if name in ("mgda", "mgda_ub") else {}
    if METHODS.get(name).sweep == "preferences":
        prefs = [tuple([1.0 / n_tasks] * n_tasks)]
        return build_method({"name": name, **options}, n_tasks, preference=prefs[0], preference_set=prefs)
    return build_method({"name": name, **options}, n_tasks)


def _cases(claim: str):
    return [name for name in GRAM_METHODS if claim in METHODS.get(name).claims]


def _n_tasks(name: str) -> int:
    # PCGrad visits the other tasks in random order; with two tasks the order is forced.
    return 2 if name == "pcgrad" else 4


def _gradients(n_tasks: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    grads = torch.randn(n_tasks, 9, generator=g, dtype=torch.float64)
    return grads, torch.rand(n_tasks, generator=g, dtype=torch.float64) + 0.5


def test_the_family_has_its_members():
    assert {"mgda", "mgda_ub", "pcgrad", "cagrad", "pareto_mtl"} <= set(GRAM_METHODS)


@pytest.mark.parametrize("name", _cases("permutation_equivariant"))
@pytest.mark.parametrize("seed", range(5))
def test_permuting_the_tasks_permutes_the_weights(name, seed):
    t = _n_tasks(name)
    grads, losses = _gradients(t, seed)
    perm = torch.randperm(t, generator=torch.Generator().manual_seed(100 + seed))
    w = _method(name, t).combination(grads, losses).double()
    w_perm = _method(name, t).combination(grads[perm], losses[perm]).double()
    torch.testing.assert_close(w_perm, w[perm], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", _cases("scale_invariant"))
@pytest.mark.parametrize("scale", [1e-3, 7.0])
def test_scaling_all_gradients_leaves_the_weights_unchanged(name, scale):
    t = _n_tasks(name)
    grads, losses = _gradients(t, 3)
    w = _method(name, t).combination(grads, losses).double()
    torch.testing.assert_close(_method(name, t).combination(scale * grads, losses).double(), w, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", _cases("non_conflicting"))
@pytest.mark.parametrize("seed", range(5))
def test_the_update_does_not_conflict_with_any_task(name, seed):
    t = _n_tasks(name)
    grads, losses = _gradients(t, seed)
    direction = _method(name, t).combination(grads, losses).double() @ grads
    assert bool(((grads @ direction) >= -1e-9).all()), (grads @ direction).tolist()


def test_a_claim_that_does_not_hold_is_caught():
    """The checks can fail: CAGrad does not claim non-conflict, and on these gradients it conflicts."""
    grads = torch.tensor([[1.0, 0.0], [-0.9, 0.1], [-0.9, -0.1]], dtype=torch.float64)
    weights = _method("cagrad", 3).combination(grads, torch.ones(3, dtype=torch.float64)).double()
    assert bool(((grads @ (weights @ grads)) < 0).any())
    assert "non_conflicting" not in METHODS.get("cagrad").claims
