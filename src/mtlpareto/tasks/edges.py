"""Edge (boundary) detection: weighted cross-entropy; the loss and a fixed-threshold F-measure.

Targets are binary boundary maps [N, H, W] (uint8; 1 on a boundary pixel, 0 elsewhere); the
head outputs logits [N, 1, H, W].

Loss: the balanced cross-entropy of tasks/saliency.py with a FIXED positive weight, ASTMT's and
MTI-Net's `edge_w` = 0.95: L = (0.95 * sum_{boundary} b_p + 0.05 * sum_{other} b_p) / pixels.

Metrics over the split: `loss` (what MTI-Net's EdgeMeter reports during training) and the
F-measure of sigmoid(logit) > `threshold` against the boundary pixels, counted exactly pixel by
pixel over the whole split (TP, FP, FN pooled; `precision`, `recall` beside it).

Not reproduced: the official edge score of these papers, the optimal-dataset-scale F (odsF),
comes from the SEISM toolbox (Pont-Tuset & Marques 2016, MATLAB), which thins the prediction,
sweeps the threshold over the split and matches predicted to true boundary pixels within a
distance tolerance (a fraction of the image diagonal; ASTMT and MTI-Net run SEISM's own
settings in MATLAB).  A pixel-exact F at one threshold is far lower than odsF and is only
comparable between runs of this project.
"""

from __future__ import annotations

from typing import Any

import torch

from mtlpareto.errors import ConfigError
from mtlpareto.tasks import TASK_TYPES, MetricMeter
from mtlpareto.tasks.saliency import BinaryMapTask, _check_pos_weight, check_binary_target
from mtlpareto.tasks.segmentation import _check_shapes

EDGE_POS_WEIGHT = 0.95  # ASTMT / MTI-Net configs: edge_w


class _EdgeMeter(MetricMeter):
    def __init__(self, task: "EdgeTask") -> None:
        self.task = task
        self.tp = self.fp = self.fn = 0
        self.loss_sum = 0.0
        self.pixels = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        _check_shapes(self.task, output, target, 1, 3)
        truth = check_binary_target(self.task, target).bool()
        predicted = torch.sigmoid(output[:, 0].detach()) > self.task.threshold
        self.tp += int((predicted & truth).sum())
        self.fp += int((predicted & ~truth).sum())
        self.fn += int((~predicted & truth).sum())
        self.loss_sum += float(self.task.loss(output.detach(), target)) * target.numel()
        self.pixels += target.numel()

    def compute(self) -> dict[str, float | None]:
        if not self.pixels:
            return {name: None for name in self.task.metrics}
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"f_measure": round(f, 6), "precision": round(precision, 6), "recall": round(recall, 6), "loss": round(self.loss_sum / self.pixels, 6)}


@TASK_TYPES.register("edges")
class EdgeTask(BinaryMapTask):
    """Boundary map with ASTMT's fixed positive weight; see the module docstring."""

    type_name = "edges"
    metrics = {"f_measure": True, "precision": True, "recall": True, "loss": False}
    primary = "f_measure"  # the papers select and compare on odsF; this is its pixel-exact stand-in

    def __init__(self, name: str, pos_weight: float = EDGE_POS_WEIGHT, threshold: float = 0.5) -> None:
        super().__init__(name, _check_pos_weight(name, pos_weight, allow_none=False))
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
            raise ConfigError(f"task {name!r}: threshold must be a probability in (0, 1), got {threshold!r}")
        self.threshold = float(threshold)

    def meter(self) -> MetricMeter:
        return _EdgeMeter(self)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "threshold": self.threshold}
