"""The fast gradient paths give the gradients of the straightforward computation.

MGDA-UB (and GradDrop) read dL_t/dz from one backward through the heads, each head on its own
leaf copy of z, then backpropagate the combination once through the encoder; MGDA sets the
shared gradient from the per-task gradients instead of a second backward.  Reference: each
per-task gradient by its own autograd call, the weights from the exact solver, then one
backward of sum_t w_t L_t (what the official code does), all in float64.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlpareto.methods import StepContext, build_method
from mtlpareto.methods.mgda import gradient_normalizers
from mtlpareto.models import HardSharing
from mtlpareto.solvers import min_norm_weights


def _model(n_tasks: int, seed: int = 0) -> HardSharing:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 5), nn.Tanh())
    heads = [nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 1)) for _ in range(n_tasks)]
    return HardSharing(encoder, heads).double()


def _data(n_tasks: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 6, generator=g, dtype=torch.float64), torch.randn(16, n_tasks, generator=g, dtype=torch.float64)


def _losses(outputs, y) -> torch.Tensor:
    return torch.stack([((o.squeeze(-1) - y[:, t]) ** 2).mean() for t, o in enumerate(outputs)])


def _grads(model) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


def _reference(model, x, y, wrt: str, normalization: str) -> list[torch.Tensor]:
    z = model.encode(x)
    losses = _losses(model.decode(z), y)
    targets = [z] if wrt == "representation" else list(model.encoder.parameters())
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[t], targets, retain_graph=True)]) for t in range(len(losses))]
    grads = torch.stack(rows)
    scaled = grads / gradient_normalizers(grads.norm(dim=1), losses, normalization)[:, None]
    weights = min_norm_weights(scaled)
    model.zero_grad()
    (weights.detach() * losses).sum().backward()
    return _grads(model)


@pytest.mark.parametrize("n_tasks", [1, 2, 5, 40])
@pytest.mark.parametrize("normalization", ["none", "loss+"])
def test_mgda_ub_from_head_copies_matches_the_straightforward_gradients(n_tasks, normalization):
    model, (x, y) = _model(n_tasks), _data(n_tasks)
    expected = _reference(model, x, y, "representation", normalization)
    model.zero_grad()
    outputs, z, copies = model.forward_with_task_representations(x)
    build_method({"name": "mgda_ub", "normalization": normalization}, n_tasks).backward(StepContext(model, _losses(outputs, y), z, task_representations=copies))
    for got, want in zip(_grads(model), expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_tasks", [1, 2, 5, 40])
@pytest.mark.parametrize("jacobian", ["loop", "batched"])
def test_mgda_without_the_extra_backward_matches_the_straightforward_gradients(n_tasks, jacobian):
    model, (x, y) = _model(n_tasks), _data(n_tasks)
    expected = _reference(model, x, y, "parameters", "loss+")
    model.zero_grad()
    outputs, z = model.forward_with_representation(x)
    build_method({"name": "mgda", "normalization": "loss+"}, n_tasks).backward(StepContext(model, _losses(outputs, y), z, jacobian=jacobian))
    for got, want in zip(_grads(model), expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["graddrop", "mgda_ub", "gradnorm", "uniform"])
def test_head_copies_change_no_gradient(name):
    """Any method gives the same gradients with or without the head copies (weighted backward
    and parameter Jacobians through z included)."""
    n_tasks = 3
    results = []
    for split in (False, True):
        model, (x, y) = _model(n_tasks), _data(n_tasks)
        method = build_method({"name": name}, n_tasks)
        if split:
            outputs, z, copies = model.forward_with_task_representations(x)
        else:
            (outputs, z), copies = model.forward_with_representation(x), None
        method.backward(StepContext(model, _losses(outputs, y), z, task_representations=copies))
        results.append(_grads(model))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
