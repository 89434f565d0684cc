"""Classification: cross-entropy, accuracy (%), and labels that may be missing for a task.

A sample labelled `ignore_index` for a task (CIFAR-100/20: an image of another superclass)
counts neither in that task's loss nor in its accuracy; a batch without any labelled sample
gives loss 0 (and a zero gradient) rather than NaN.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from mtlpareto.errors import ConfigError
from mtlpareto.tasks import TASK_TYPES, MetricMeter, Task

IGNORE_INDEX = -100


class _AccuracyMeter(MetricMeter):
    def __init__(self, task: "ClassificationTask") -> None:
        self.task = task
        self.loss_sum = 0.0
        self.correct = 0
        self.count = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        valid = target != self.task.ignore_index
        n_valid = int(valid.sum())
        # The batch's mean loss times its labelled samples: the split's mean is then the mean
        # of the training loss over every labelled sample.
        self.loss_sum += float(self.task.loss(output, target)) * n_valid
        self.correct += int((output.argmax(1)[valid] == target[valid]).sum())
        self.count += n_valid

    def compute(self) -> dict[str, float | None]:
        # A task without a labelled sample in the split has no score (None), not 0.
        if not self.count:
            return {"accuracy": None, "loss": None}
        return {"accuracy": round(100.0 * self.correct / self.count, 4), "loss": round(self.loss_sum / self.count, 6)}


@TASK_TYPES.register("classification")
class ClassificationTask(Task):
    """`n_classes`-way classification of one label per sample (or per pixel: [N, C, H, W] logits)."""

    type_name = "classification"
    metrics = {"accuracy": True, "loss": False}
    primary = "accuracy"

    def __init__(self, name: str, n_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(name)
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ConfigError(f"task {name!r}: n_classes must be an integer >= 2, got {n_classes!r}")
        self.n_classes = n_classes
        self.ignore_index = ignore_index

    @property
    def out_channels(self) -> int:
        return self.n_classes

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        count = (target != self.ignore_index).sum().clamp_min(1)
        return F.cross_entropy(output, target, ignore_index=self.ignore_index, reduction="sum") / count

    def meter(self) -> MetricMeter:
        return _AccuracyMeter(self)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "n_classes": self.n_classes, "ignore_index": self.ignore_index}
