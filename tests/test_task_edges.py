"""Edge task: ASTMT's weighted cross-entropy against its formula, the F-measure against a hand count."""

from __future__ import annotations

import math

import pytest
import torch

from mtlpareto.errors import ConfigError
from mtlpareto.tasks import build_task
from mtlpareto.tasks.edges import EDGE_POS_WEIGHT, EdgeTask


def test_loss_weights_boundary_pixels_by_the_fixed_positive_weight():
    logits = torch.tensor([[[[1.5, -0.5, 0.25]]]])  # [1, 1, 1, 3]
    target = torch.tensor([[[1, 0, 1]]], dtype=torch.uint8)
    positive = math.log1p(math.exp(-1.5)) + math.log1p(math.exp(-0.25))  # log(1 + e^-x) on boundaries
    negative = math.log1p(math.exp(-0.5))  # log(1 + e^x) elsewhere
    expected = (0.95 * positive + 0.05 * negative) / 3
    assert EDGE_POS_WEIGHT == 0.95
    assert float(EdgeTask("edge").loss(logits, target)) == pytest.approx(expected, rel=1e-6)


def test_f_measure_pools_pixels_over_the_split():
    # Batch 1: truth [1, 1, 0, 0], predicted [1, 0, 1, 0] -> TP 1, FP 1, FN 1.
    # Batch 2: truth [1, 0, 0, 0], predicted [1, 1, 1, 0] -> TP 1, FP 2, FN 0.
    # Pooled: TP 2, FP 3, FN 1 -> P 2/5, R 2/3, F = 2 P R / (P + R) = 1/2.
    meter = EdgeTask("edge").meter()
    for truth, predicted in (([1, 1, 0, 0], [1, 0, 1, 0]), ([1, 0, 0, 0], [1, 1, 1, 0])):
        logits = (torch.tensor(predicted, dtype=torch.float32) * 4 - 2).view(1, 1, 1, 4)
        meter.update(logits, torch.tensor(truth, dtype=torch.uint8).view(1, 1, 4))
    scores = meter.compute()
    assert scores["precision"] == pytest.approx(2 / 5) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f_measure"] == pytest.approx(0.5)


def test_the_threshold_decides_which_pixels_are_boundaries():
    logits = torch.tensor([[[[0.0, 2.0]]]])  # probabilities 0.5 and 0.88
    truth = torch.tensor([[[1, 1]]], dtype=torch.uint8)
    low, high = EdgeTask("edge", threshold=0.4).meter(), EdgeTask("edge", threshold=0.6).meter()
    low.update(logits, truth), high.update(logits, truth)
    assert low.compute()["recall"] == 1.0 and high.compute()["recall"] == 0.5


def test_options_are_checked_and_rebuilt():
    with pytest.raises(ConfigError, match="pos_weight must be a number in"):
        EdgeTask("edge", pos_weight=None)
    with pytest.raises(ConfigError, match="threshold must be a probability"):
        EdgeTask("edge", threshold=1.0)
    task = EdgeTask("edge", pos_weight=0.9, threshold=0.3)
    assert build_task(task.config()) == task
