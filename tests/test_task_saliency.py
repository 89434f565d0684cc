"""Saliency task: balanced cross-entropy against its formula, mIoU / max F against hand counts."""

from __future__ import annotations

import math

import pytest
import torch

from mtlpareto.errors import ConfigError
from mtlpareto.tasks import build_task
from mtlpareto.tasks.saliency import SALIENCY_THRESHOLDS, SaliencyTask


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_thresholds_are_the_published_linspace():
    assert len(SALIENCY_THRESHOLDS) == 15
    assert SALIENCY_THRESHOLDS[0] == pytest.approx(0.2) and SALIENCY_THRESHOLDS[-1] == pytest.approx(0.9)


def test_balanced_loss_weights_positives_by_the_fraction_of_negatives():
    logits = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]]]])  # [1, 1, 2, 2]
    target = torch.tensor([[[1, 0], [0, 0]]], dtype=torch.uint8)
    # BCE of a logit x: log(1 + e^-x) for a positive pixel, log(1 + e^x) for a negative one.
    positive = _softplus(-2.0)
    negative = _softplus(-1.0) + _softplus(0.0) + _softplus(3.0)
    w = 3 / 4  # three of the four pixels are negative
    expected = (w * positive + (1 - w) * negative) / 4
    assert float(SaliencyTask("sal").loss(logits, target)) == pytest.approx(expected, rel=1e-6)
    fixed = (0.9 * positive + 0.1 * negative) / 4
    assert float(SaliencyTask("sal", pos_weight=0.9).loss(logits, target)) == pytest.approx(fixed, rel=1e-6)


def test_miou_and_max_f_follow_a_hand_count():
    # Image 0: truth {(0,0), (0,1)}, prediction {(0,0), (1,1)}: TP 1, FP 1, FN 1 -> IoU 1/3, P 1/2, R 1/2.
    # Image 1: nothing salient, nothing predicted: IoU 1 (both empty), P 0, R 0.
    # Logits of +-10 are on the same side of every threshold 0.2 .. 0.9.
    truth = torch.tensor([[[1, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]], dtype=torch.uint8)
    predicted = torch.tensor([[[1, 0, 0], [0, 1, 0]], [[0, 0, 0], [0, 0, 0]]])
    logits = (predicted.float() * 20 - 10)[:, None]
    meter = SaliencyTask("sal").meter()
    meter.update(logits[:1], truth[:1])  # two batches: per-image means do not depend on batching
    meter.update(logits[1:], truth[1:])
    scores = meter.compute()
    assert scores["miou"] == pytest.approx((1 / 3 + 1) / 2, abs=1e-6)
    mean_p = mean_r = (1 / 2 + 0) / 2
    assert scores["max_f"] == pytest.approx(2 * mean_p * mean_r / (mean_p + mean_r), abs=1e-6)


def test_the_best_threshold_is_chosen():
    # Truth [1, 1, 0, 0], probabilities [0.95, 0.5, 0.5, 0.1].
    # Thresholds 0.20 .. 0.45 predict [1, 1, 1, 0]: IoU 2/3, P 2/3, R 1, F 0.8.
    # Thresholds 0.50 .. 0.90 predict [1, 0, 0, 0]: IoU 1/2, P 1, R 1/2, F 2/3.
    truth = torch.tensor([[[1, 1, 0, 0]]], dtype=torch.uint8)
    logits = torch.tensor([[[[math.log(19.0), 0.0, 0.0, -math.log(9.0)]]]])
    meter = SaliencyTask("sal").meter()
    meter.update(logits, truth)
    scores = meter.compute()
    assert scores["miou"] == pytest.approx(2 / 3, abs=1e-6)
    assert scores["max_f"] == pytest.approx(0.8, abs=1e-6)


def test_bad_targets_and_options_are_refused():
    task = SaliencyTask("sal")
    with pytest.raises(ValueError, match="targets must be 0 or 1"):
        task.loss(torch.zeros(1, 1, 2, 2), torch.full((1, 2, 2), 255, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"expected outputs \[N, 1, H, W\]"):
        task.loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="pos_weight must be a number in"):
        SaliencyTask("sal", pos_weight=1.5)


def test_the_task_rebuilds_from_its_config():
    task = SaliencyTask("sal", pos_weight=0.8)
    assert build_task(task.config()) == task and build_task(task.config()).pos_weight == 0.8
