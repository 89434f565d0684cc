"""DYMU (models/dymu.py, training/dymu.py): sampler, trees over the anchor net, costs, regulariser."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.models import build_model
from mtlpareto.models.dymu import (
    TREE_BLOCKS,
    AnchorNet,
    EdgeHyperNet,
    Tree,
    WeightHyperNet,
    active_tasks,
    branching_regulariser,
    choosing_node_usage,
    gumbel_softmax,
    mean_affinity,
    node_occupancy,
    task_affinity,
    temperature_at,
)
from mtlpareto.models.hard_sharing import HardSharing
from mtlpareto.training.dymu import sweep_preferences, uniformity


# --------------------------------------------------------------------------- Gumbel-softmax


def test_gumbel_sample_frequencies_converge_to_softmax_probabilities():
    logits = torch.tensor([0.5, -1.0, 1.2, 0.0, -0.3], dtype=torch.float64)
    n = 40_000
    generator = torch.Generator().manual_seed(0)
    samples = gumbel_softmax(logits.expand(n, -1), temperature=1.0, generator=generator, hard=True)
    frequencies = samples.sum(0) / n
    expected = torch.softmax(logits, 0)
    sigma = torch.sqrt(expected * (1 - expected) / n)
    assert torch.all((frequencies - expected).abs() < 4 * sigma), (frequencies, expected)
    # every hard sample is one-hot
    assert torch.equal(samples.sum(1), torch.ones(n, dtype=torch.float64))


def test_gumbel_sample_at_vanishing_temperature_is_the_argmax():
    logits = torch.tensor([[0.3, 2.0, -0.5], [1.0, 1.1, 0.9]], dtype=torch.float64)
    for seed in range(20):
        soft = gumbel_softmax(logits, temperature=1e-4, generator=torch.Generator().manual_seed(seed), hard=False)
        hard = gumbel_softmax(logits, temperature=1.0, generator=torch.Generator().manual_seed(seed), hard=True)
        # the same noise: the relaxed sample collapses onto the one-hot of argmax(logits + g)
        assert torch.allclose(soft, hard.detach(), atol=1e-9)
    # a dominant logit wins against any noise at low temperature too
    big = torch.tensor([0.0, 60.0, 0.0], dtype=torch.float64)
    assert torch.equal(gumbel_softmax(big, 1e-3, torch.Generator().manual_seed(1), hard=False).round(), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))


def test_straight_through_sample_passes_gradients_to_the_logits():
    logits = torch.zeros(3, 3, requires_grad=True)
    y = gumbel_softmax(logits, 0.5, torch.Generator().manual_seed(0), hard=True)
    (y * torch.arange(9.0).view(3, 3)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_temperature_schedule_is_the_papers_step_decay():
    assert temperature_at(0, 5.0, 0.97, 300) == 5.0
    assert temperature_at(299, 5.0, 0.97, 300) == 5.0
    assert temperature_at(900, 5.0, 0.97, 300) == pytest.approx(5.0 * 0.97**3)


# --------------------------------------------------------------------------- a toy anchor net


class ToyBlock(nn.Module):
    """Linear -> BatchNorm1d -> ReLU on (h, carried) states."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.bn = nn.BatchNorm1d(d_out)

    def forward(self, h, carried):
        return torch.relu(self.bn(self.linear(h))), carried


WIDTHS = (4, 6, 5, 3)  # input, then the outputs of the 3 layers


def toy_anchor(n_tasks: int = 3, seed: int = 0) -> AnchorNet:
    torch.manual_seed(seed)
    streams = []
    for _ in range(n_tasks):
        blocks = [ToyBlock(a, b) for a, b in zip(WIDTHS[:-1], WIDTHS[1:])]
        for b in blocks:  # non-trivial running statistics and affine parameters
            b.bn.running_mean.uniform_(-0.5, 0.5)
            b.bn.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(b.bn.weight, 0.5, 1.5)
            nn.init.uniform_(b.bn.bias, -0.2, 0.2)
        streams.append(blocks)
    heads = [nn.Linear(WIDTHS[-1], 2) for _ in range(n_tasks)]
    return AnchorNet(streams, heads, torch.zeros(1, WIDTHS[0]))


def plain_stream(anchor: AnchorNet, j: int) -> nn.Module:
    """Stream j as an ordinary network (its blocks' layers in sequence), independent of the tree code."""
    layers = []
    for block in anchor.streams[j]:
        layers += [block.linear, block.bn, nn.ReLU()]
    return nn.Sequential(*layers).eval()


def test_disjoint_tree_equals_the_anchor_networks():
    anchor = toy_anchor()
    x = torch.randn(7, WIDTHS[0])
    outputs = anchor.forward_tree(x, Tree.disjoint(3, 3))
    for i in range(3):
        expected = anchor.heads[i](plain_stream(anchor, i)(x))
        assert torch.equal(outputs[i], expected)
    identity = [torch.eye(3) for _ in range(3)]
    for out, ref in zip(anchor.forward_relaxed(x, identity), outputs):
        assert torch.allclose(out, ref, atol=1e-6)


def test_shared_tree_equals_the_hard_sharing_network():
    anchor = toy_anchor()
    x = torch.randn(7, WIDTHS[0])
    for stream in range(3):
        shared = HardSharing(plain_stream(anchor, stream), list(anchor.heads)).eval()
        expected = shared(x)
        outputs = anchor.forward_tree(x, Tree.shared(3, 3, stream))
        assert all(torch.equal(o, e) for o, e in zip(outputs, expected))


def test_relaxed_forward_of_a_hard_sample_has_the_trees_values_and_gradients():
    anchor = toy_anchor()
    x = torch.randn(5, WIDTHS[0])
    logits = [torch.randn(3, 3, requires_grad=True) for _ in range(3)]
    choices = [gumbel_softmax(l, 1.0, torch.Generator().manual_seed(k)) for k, l in enumerate(logits)]
    relaxed = anchor.forward_relaxed(x, choices)
    exact = anchor.forward_tree(x, Tree.from_choices(choices))
    for r, e in zip(relaxed, exact):
        assert torch.allclose(r, e, atol=1e-6)
    sum(o.sum() for o in relaxed).backward()
    assert all(l.grad is not None and l.grad.abs().sum() > 0 for l in logits)


def test_a_shared_node_runs_once():
    anchor = toy_anchor()
    calls = []
    for l, block in enumerate(anchor.streams[0]):
        block.register_forward_hook(lambda m, i, o, l=l: calls.append(l))
    anchor.forward_tree(torch.randn(2, WIDTHS[0]), Tree.shared(3, 3, 0))
    assert calls == [0, 1, 2]


def test_segnet_trees_reproduce_the_single_task_and_shared_networks():
    """The real adapter: SegNet stages with pooling indices carried along each path."""
    torch.manual_seed(0)
    nets = [build_model("segnet", [3, 1, 2], (3, 32, 64), width=0.125).eval() for _ in range(3)]
    for net in nets:  # non-trivial running statistics
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.8, 1.2)
    streams = [TREE_BLOCKS.get("segnet")(net.encoder, [2, 3, 3, 2]) for net in nets]
    anchor = AnchorNet(streams, [net.heads[i] for i, net in enumerate(nets)], torch.zeros(1, 3, 32, 64))
    x = torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        disjoint = anchor.forward_tree(x, Tree.disjoint(3, 4))
        for i, net in enumerate(nets):
            assert torch.allclose(disjoint[i], net(x)[i], atol=1e-5)
        shared = anchor.forward_tree(x, Tree.shared(3, 4, 1))
        reference = HardSharing(nets[1].encoder, [net.heads[i] for i, net in enumerate(nets)]).eval()(x)
        for out, ref in zip(shared, reference):
            assert torch.allclose(out, ref, atol=1e-5)
    with pytest.raises(ConfigError, match="block_stages"):
        TREE_BLOCKS.get("segnet")(nets[0].encoder, [2, 3])


# --------------------------------------------------------------------------- costs


def toy_block_cost(d_in: int, d_out: int) -> tuple[int, int]:
    """Hand count: Linear weights and biases, BatchNorm scale and shift; MACs = d_in * d_out."""
    return d_in * d_out + d_out + 2 * d_out, d_in * d_out


def test_tree_cost_against_a_hand_count():
    anchor = toy_anchor()
    # layer 1: nodes 0 and 1 read node 0, node 2 reads node 2; heads: tasks 0, 1 read node 1, task 2 node 2
    tree = Tree(parents=((0, 0, 2), (1, 1, 2)), heads=(1, 1, 2))
    assert tree.active_nodes() == [[0, 2], [1, 2], [1, 2]]
    block = [toy_block_cost(a, b) for a, b in zip(WIDTHS[:-1], WIDTHS[1:])]
    head_params, head_macs = 3 * (WIDTHS[-1] * 2 + 2), 3 * WIDTHS[-1] * 2
    expected_params = 2 * sum(p for p, _ in block) + head_params
    expected_macs = 2 * sum(m for _, m in block) + head_macs
    assert anchor.cost(tree) == {"parameters": expected_params, "flops": expected_macs}
    full = anchor.cost(Tree.disjoint(3, 3))
    assert full["parameters"] == sum(p.numel() for p in anchor.parameters())
    assert anchor.cost(Tree.shared(3, 3))["parameters"] == sum(p for p, _ in block) + head_params
    assert "layer 0: [t0 t1] [t2]" in tree.describe(["t0", "t1", "t2"])
    assert tree.path(0) == [0, 1, 1] and tree.path(2) == [2, 2, 2]


def test_segnet_node_cost_against_a_hand_count():
    net = build_model("segnet", [2, 2], (3, 32, 64), width=0.125)  # widths 8, 16, 32, 64, 64
    streams = [TREE_BLOCKS.get("segnet")(net.encoder) for _ in range(2)]
    anchor = AnchorNet(streams, list(net.heads), torch.zeros(1, 3, 32, 64))
    c0, h, w = 8, 32, 64
    # encoder stage 0: conv3x3 3->8 + BN, conv3x3 8->8 + BN
    params = (3 * 9 * c0 + c0) + 2 * c0 + (c0 * 9 * c0 + c0) + 2 * c0
    macs = h * w * c0 * 3 * 9 + h * w * c0 * c0 * 9
    assert anchor.node_parameters[0][0] == params
    assert anchor.node_flops[0][0] == macs
    # head: conv3x3 8->8 then conv1x1 8->2, at full resolution
    assert anchor.head_parameters[0] == (c0 * 9 * c0 + c0) + (c0 * 2 + 2)
    assert anchor.head_flops[0] == h * w * (c0 * c0 * 9 + c0 * 2)


# --------------------------------------------------------------------------- regulariser and budget


def test_node_occupancy_matches_brute_force_over_all_trees():
    torch.manual_seed(3)
    n, layers = 2, 3
    probabilities = [torch.softmax(torch.randn(n, n, dtype=torch.float64), -1) for _ in range(layers)]
    occupancy = node_occupancy(probabilities)
    exact = torch.zeros(layers, n, n, dtype=torch.float64)
    rows = [list(itertools.product(range(n), repeat=n)) for _ in range(layers)]
    for choice in itertools.product(*rows):
        prob = 1.0
        for p, row in zip(probabilities, choice):
            prob *= float(torch.prod(p[torch.arange(n), torch.tensor(row)]))
        tree = Tree(tuple(choice[:-1]), choice[-1])
        for task in range(n):
            for layer, node in enumerate(tree.path(task)):
                exact[layer, task, node] += prob
    assert torch.allclose(torch.stack(occupancy), exact, atol=1e-12)


def sampled_parameters(anchor: AnchorNet, probabilities: list[torch.Tensor], samples: int, generator: torch.Generator) -> float:
    """Monte Carlo mean of the parameter count of trees drawn edge by edge from `probabilities`."""
    total = 0
    for _ in range(samples):
        rows = [tuple(int(v) for v in torch.multinomial(p, 1, generator=generator).flatten()) for p in probabilities]
        total += anchor.cost(Tree(tuple(rows[:-1]), rows[-1]))["parameters"]
    return total / samples


def test_node_usage_is_exact_below_the_heads_by_brute_force():
    """P_use of the last layer's nodes (decision L-2's choosers) against every choice of the heads."""
    torch.manual_seed(4)
    n = 3
    probabilities = [torch.softmax(torch.randn(n, n, dtype=torch.float64), -1) for _ in range(3)]
    usage = choosing_node_usage(probabilities)
    assert torch.equal(usage[-1], torch.ones(n, dtype=torch.float64))  # the heads are always used
    exact = torch.zeros(n, dtype=torch.float64)
    for heads in itertools.product(range(n), repeat=n):
        prob = float(torch.prod(probabilities[-1][torch.arange(n), torch.tensor(heads)]))
        for k in set(heads):
            exact[k] += prob
    assert torch.allclose(usage[-2], exact, atol=1e-12)


def hand_probabilities() -> list[torch.Tensor]:
    """Two tasks, two decisions: layer-1 nodes pick among layer 0, then the heads among layer 1."""
    return [torch.tensor([[0.8, 0.2], [0.4, 0.6]], dtype=torch.float64), torch.tensor([[0.5, 0.5], [0.1, 0.9]], dtype=torch.float64)]


def test_node_usage_dynamic_programme_by_hand():
    usage = choosing_node_usage(hand_probabilities())
    # layer-1 node 0 is used unless neither head picks it: 1 - (1 - 0.5)(1 - 0.1) = 0.55; node 1: 1 - 0.5 * 0.1
    assert torch.allclose(usage[0], torch.tensor([0.55, 0.95], dtype=torch.float64))
    assert torch.equal(usage[1], torch.ones(2, dtype=torch.float64))


def test_regulariser_against_a_hand_computation():
    """Omega with nu = the probabilities (no noise), A(0, 1) = 0.8, A(1, 0) = 0.6 (rows scaled apart).

    Decision 0 (weight (2 - 0) / 2 = 1): ||nu_0 - nu_1||^2 = 0.4^2 + 0.4^2 = 0.32, P_use = 0.55 * 0.95;
    decision 1, the heads (weight 1/2): the same gap 0.32, P_use = 1.  Both ordered pairs count:
    L_active = (0.8 + 0.6) * (0.32 * 0.5225 + 0.5 * 0.32) = 0.45808.
    """
    p = hand_probabilities()
    affinity = torch.tensor([[1.0, 0.8], [0.6, 1.0]], dtype=torch.float64)
    uniform = torch.tensor([0.5, 0.5])
    assert float(branching_regulariser(p, p, uniform, 0.5, affinity, lambda_active=1.0)) == pytest.approx(0.5 * 0.45808)
    assert float(branching_regulariser(p, p, uniform, 0.0, affinity)) == 0.0  # all active, c = 0: no pressure
    # r = (0.9, 0.1): tau = 0.6 / 2 = 0.3, task 1 inactive; L_inactive = 0.32 + 0.32 at every c
    focused = torch.tensor([0.9, 0.1])
    assert active_tasks(focused, 0.6) == [0]
    for c in (0.0, 1.0):
        assert float(branching_regulariser(p, p, focused, c, affinity, lambda_inactive=0.1)) == pytest.approx(0.1 * 0.64)
    # a per-layer affinity [L, N, N] is averaged over its layers first
    layered = torch.stack([affinity - 0.1, affinity + 0.1])
    assert float(branching_regulariser(p, p, uniform, 1.0, layered)) == pytest.approx(0.45808)
    # identical parent choices cost nothing
    same = [torch.tensor([[0.3, 0.7], [0.3, 0.7]], dtype=torch.float64)] * 2
    assert float(branching_regulariser(same, same, focused, 1.0, affinity)) == 0.0


def test_budget_term_lowers_the_expected_parameter_count():
    """Toy setting: a task term that keeps each task on its own stream (0.3 per layer a task's
    path leaves it) against Omega; all tasks active, so only c weighs the sharing term.  The
    expected parameter count of the sampled trees (Monte Carlo, the same draws per c) must not
    grow with c (beyond Monte Carlo noise), from the anchor net's at c = 0 to well below it at c = 1."""
    torch.manual_seed(0)
    anchor = toy_anchor()
    edge = EdgeHyperNet(3, anchor.n_layers, embedding_dim=8, hidden_dim=32, own_stream_bias=1.0)
    affinity = torch.ones(3, 3, dtype=torch.float64)
    r = torch.full((3,), 1.0 / 3)
    optimizer = torch.optim.Adam(edge.parameters(), lr=0.003)
    budgets = [0.0, 0.25, 0.5, 0.75, 1.0]
    for step in range(750):
        c = budgets[step % len(budgets)]
        probabilities = [torch.softmax(l, -1).double() for l in edge(r, c)]
        leaving = sum(1.0 - torch.diagonal(occ) for occ in node_occupancy(probabilities)).sum()
        loss = 0.3 * leaving + branching_regulariser(probabilities, probabilities, r, c, affinity, lambda_active=3.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        expected = [sampled_parameters(anchor, [torch.softmax(l, -1) for l in edge(r, c)], 300, torch.Generator().manual_seed(2)) for c in budgets]
    full = anchor.cost(Tree.disjoint(3, 3))["parameters"]
    shared = anchor.cost(Tree.shared(3, 3))["parameters"]
    assert all(a >= b - 0.01 * full for a, b in zip(expected, expected[1:])), expected  # up to Monte Carlo noise
    assert expected[0] > 0.95 * full and expected[-1] < shared + 0.5 * (full - shared), (expected, full, shared)


# --------------------------------------------------------------------------- affinity, weights, metrics


def test_task_affinity_by_representation_similarity():
    torch.manual_seed(0)
    base = torch.randn(12, 20, dtype=torch.float64)
    same = 2.0 * base + 3.0  # per-image affine: the same correlation matrix
    other = torch.randn(12, 20, dtype=torch.float64)
    a = task_affinity([[base, same, other]])
    assert a.shape == (1, 3, 3)
    assert torch.allclose(torch.diagonal(a[0]), torch.ones(3, dtype=torch.float64))
    assert float(a[0, 0, 1]) == pytest.approx(1.0)
    assert float(a[0, 0, 2]) == pytest.approx(0.0) and float(a[0, 1, 2]) == pytest.approx(0.0)  # each row's farthest task
    # an independent reference: numpy's correlation matrices, Frobenius distances, rows scaled by their maximum
    import numpy as np

    feats = [torch.randn(6, 9, dtype=torch.float64) for _ in range(3)]
    s = [np.corrcoef(f.numpy()) for f in feats]
    d = np.array([[np.linalg.norm(s[i] - s[j]) for j in range(3)] for i in range(3)])
    reference = 1.0 - d / d.max(axis=1, keepdims=True)
    got = task_affinity([feats, feats])
    assert np.allclose(got[0].numpy(), reference) and np.allclose(mean_affinity(got).numpy(), reference)
    assert not np.allclose(reference, reference.T)  # rows scaled apart: not symmetric


def test_untrained_weight_hypernet_leaves_the_anchor_unchanged_and_modulates_batchnorm():
    anchor = toy_anchor()
    weight = WeightHyperNet(anchor, hidden_dim=8, n_hidden=3, embedding_dim=4)
    assert weight.size == 2 * 3 * sum(WIDTHS[1:])
    x = torch.randn(4, WIDTHS[0])
    tree = Tree.disjoint(3, 3)
    offsets = weight.offsets(anchor, torch.full((3,), 1 / 3), 0.5)
    for a, b in zip(anchor.forward_tree(x, tree, offsets), anchor.forward_tree(x, tree)):
        assert torch.allclose(a, b)
    with torch.no_grad():
        weight.out.bias.fill_(0.1)
    shifted = anchor.forward_tree(x, tree, weight.offsets(anchor, torch.full((3,), 1 / 3), 0.5))
    assert not torch.allclose(shifted[0], anchor.forward_tree(x, tree)[0])
    assert all(not p.requires_grad for p in anchor.parameters())  # the anchor stays frozen


def test_uniformity_is_one_minus_kl_of_the_weighted_losses():
    assert uniformity([2.0, 2.0, 2.0], [1 / 3, 1 / 3, 1 / 3]) == pytest.approx(1.0)
    p = [0.75, 0.25]
    kl = sum(v * math.log(v * 2) for v in p)
    assert uniformity([3.0, 1.0], [0.5, 0.5]) == pytest.approx(1.0 - kl)


def test_preference_sweep_moves_one_task_weight_with_the_rest_equal():
    sweep = sweep_preferences(3, 3)
    assert len(sweep) == 9
    task, s, r = sweep[5]
    assert task == 1 and s == 1.0 and torch.allclose(r, torch.tensor([0.0, 1.0, 0.0]))
    assert all(float(r.sum()) == pytest.approx(1.0) for _, _, r in sweep)
