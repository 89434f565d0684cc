"""GradDrop: against an independent reference (a hand-written formula, a brute-force solve, or the problem's known optimum)."""

from __future__ import annotations

import pytest
import torch

from mtlpareto.methods import StepContext, build_method
from mtlpareto.methods.graddrop import graddrop_mask

from method_helpers import _mtl, _forward, _data, _task_grads, _flat_grad


def test_graddrop_mask_on_a_hand_constructed_gradient_matrix():
    stats = torch.tensor([[1.0, -1.0, 2.0], [1.0, 3.0, -2.0]])
    # purity per column: 1 (all positive), 0.75, 0.5 (balanced)
    uniform = torch.tensor([0.3, 0.8, 0.4])
    # col 0: P > U, keep positives; col 1: P < U, keep negatives; col 2: P > U, keep positives
    expected = torch.tensor([[True, True, True], [True, False, False]])
    assert torch.equal(graddrop_mask(stats, uniform), expected)


def test_graddrop_keeps_everything_when_tasks_agree_in_sign():
    g = torch.Generator().manual_seed(0)
    magnitudes = torch.rand(3, 50, generator=g) + 0.1
    signs = torch.where(torch.rand(50, generator=g) > 0.5, 1.0, -1.0)
    stats = magnitudes * signs  # every column has one sign for all tasks: purity 1 or 0
    for _ in range(5):
        assert graddrop_mask(stats, torch.rand(50, generator=g) * 0.98 + 0.01).all()
    # purity extremes: P = 1 keeps positives for every U < 1, P = 0 keeps negatives for every U > 0
    assert graddrop_mask(torch.tensor([[1.0], [2.0]]), torch.tensor([0.999])).all()
    assert graddrop_mask(torch.tensor([[-1.0], [-2.0]]), torch.tensor([0.001])).all()
    # and a conflicting element keeps exactly one sign
    mask = graddrop_mask(torch.tensor([[1.0], [-1.0]]), torch.tensor([0.2]))
    assert mask.sum() == 1 and bool(mask[0, 0])


def test_graddrop_without_conflict_or_with_full_leak_is_the_plain_sum():
    for shared_heads, leak in ((True, 0.0), (False, 1.0)):
        model = _mtl(shared_heads=shared_heads)
        x, y = _data(4)
        if shared_heads:
            y[:, 1] = y[:, 0]
        losses, z = _forward(model, x, y)
        reference = _task_grads(model, losses, list(model.parameters())).sum(dim=0)
        build_method({"name": "graddrop", "leak": leak, "seed": 0}, n_tasks=2).backward(StepContext(model, losses, z))
        torch.testing.assert_close(_flat_grad(model.parameters()), reference, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("input_sign,sum_batch", [(True, True), (False, False)])
def test_graddrop_backpropagates_its_masked_feature_gradient_through_the_encoder(input_sign, sum_batch):
    model = _mtl(shared_heads=False)
    losses, z = _forward(model, *_data(6))
    jz = _task_grads(model, losses, [z])
    options = {"name": "graddrop", "seed": 9, "input_sign": input_sign, "sum_batch": sum_batch}
    twin = build_method(options, n_tasks=2)  # same seed: draws the same uniforms
    feature_grad = twin.feature_gradient(jz, z)
    # every element of the new z-gradient is the sum over a subset of the tasks
    t0, t1 = jz.view(2, *z.shape)
    choices = torch.stack([torch.zeros_like(t0), t0, t1, t0 + t1])
    assert ((choices - feature_grad).abs().min(dim=0).values <= 1e-7).all()
    if sum_batch:  # one keep decision per feature, shared by the whole batch
        same_subset_for_every_row = ((choices - feature_grad).abs() <= 1e-7).all(dim=1)
        assert same_subset_for_every_row.any(dim=0).all()
    encoder = list(model.shared_parameters())
    expected = torch.autograd.grad(z, encoder, grad_outputs=feature_grad, retain_graph=True)
    heads = torch.autograd.grad(losses.sum(), list(model.task_parameters()), retain_graph=True)
    build_method(options, n_tasks=2).backward(StepContext(model, losses, z))
    for p, e in zip(encoder, expected):
        torch.testing.assert_close(p.grad, e)
    for p, e in zip(model.task_parameters(), heads):
        torch.testing.assert_close(p.grad, e)
