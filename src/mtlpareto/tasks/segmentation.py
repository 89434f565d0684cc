"""Semantic segmentation: per-pixel cross-entropy; mIoU and pixel accuracy over a whole split.

Targets are label maps int [N, H, W] (any integer dtype; int8 on disk) with classes
0..n_classes-1 and `ignore_index` (-1, the NYUv2/Cityscapes community convention) for
unlabelled pixels; the head outputs logits [N, n_classes, H, W].

Metrics come from ONE confusion matrix accumulated over every labelled pixel of the split (not
a mean of per-batch or per-image mIoUs, which depends on the batch size): IoU_c = TP / (TP + FP
+ FN), averaged over the classes that occur in the prediction or the truth; a class absent
from both has no IoU and is left out (not NaN, not 0).  Both are fractions in [0, 1], as MTAN's
and MPPS's tables give them.
"""

from __future__ import annotations

import torch

from mtlpareto.errors import ConfigError
from mtlpareto.tasks import TASK_TYPES, MetricMeter, Task
from mtlpareto.tasks.classification import ClassificationTask

IGNORE_INDEX = -1


def _check_shapes(task: Task, output: torch.Tensor, target: torch.Tensor, channels: int, target_dims: int) -> None:
    """Dense outputs [N, C, H, W] against targets of the same N, H, W (clear message, not a broadcast)."""
    if output.dim() != 4 or output.shape[1] != channels:
        raise ValueError(f"task {task.name!r} ({task.type_name}): expected outputs [N, {channels}, H, W], got {tuple(output.shape)}")
    if target.dim() != target_dims:
        raise ValueError(f"task {task.name!r} ({task.type_name}): expected a {target_dims}-d target, got shape {tuple(target.shape)}")
    if target.shape[0] != output.shape[0] or tuple(target.shape[-2:]) != tuple(output.shape[-2:]):
        raise ValueError(f"task {task.name!r} ({task.type_name}): outputs {tuple(output.shape)} and targets {tuple(target.shape)} differ in batch size or H x W")


def confusion_matrix(predicted: torch.Tensor, truth: torch.Tensor, n_classes: int, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """int64 [n_classes, n_classes]: entry (t, p) counts labelled pixels of true class t predicted as p."""
    truth = truth.reshape(-1).long()
    predicted = predicted.reshape(-1).long()
    labelled = truth != ignore_index
    truth, predicted = truth[labelled], predicted[labelled]
    if truth.numel() and (int(truth.min()) < 0 or int(truth.max()) >= n_classes):
        raise ValueError(f"label map holds classes outside 0..{n_classes - 1} (and ignore index {ignore_index}): found {int(truth.min())}..{int(truth.max())}")
    return torch.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes).cpu()


def scores_from_confusion(matrix: torch.Tensor) -> dict[str, float | None]:
    """mIoU over the classes present in prediction or truth, and pixel accuracy; None without pixels."""
    matrix = matrix.to(torch.float64)
    total = float(matrix.sum())
    if total == 0:
        return {"miou": None, "pixel_acc": None}
    hits = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - hits
    present = union > 0
    return {"miou": float((hits[present] / union[present]).mean()), "pixel_acc": float(hits.sum()) / total}


class _ConfusionMeter(MetricMeter):
    def __init__(self, task: "SegmentationTask") -> None:
        self.task = task
        self.matrix = torch.zeros(task.n_classes, task.n_classes, dtype=torch.int64)
        self.loss_sum = 0.0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        _check_shapes(self.task, output, target, self.task.n_classes, 3)
        batch = confusion_matrix(output.argmax(1), target, self.task.n_classes, self.task.ignore_index)
        # The batch's mean loss times its labelled pixels: the split's loss is then the mean over every labelled pixel.
        self.loss_sum += float(self.task.loss(output.detach(), target)) * int(batch.sum())
        self.matrix += batch

    def compute(self) -> dict[str, float | None]:
        scores = scores_from_confusion(self.matrix)
        count = int(self.matrix.sum())
        out = {k: (None if v is None else round(v, 6)) for k, v in scores.items()}
        out["loss"] = round(self.loss_sum / count, 6) if count else None
        return out


@TASK_TYPES.register("segmentation")
class SegmentationTask(ClassificationTask):
    """Per-pixel `n_classes`-way classification of a label map; see the module docstring.

    The loss is classification's (cross-entropy over the labelled pixels); the metrics come from
    the confusion matrix of the whole split.
    """

    type_name = "segmentation"
    metrics = {"miou": True, "pixel_acc": True, "loss": False}
    primary = "miou"

    def __init__(self, name: str, n_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(name, n_classes, ignore_index)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or 0 <= ignore_index < n_classes:
            raise ConfigError(f"task {name!r}: ignore_index must be an integer outside 0..{n_classes - 1}, got {ignore_index!r}")

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_shapes(self, output, target, self.n_classes, 3)
        return super().loss(output, target.long())

    def meter(self) -> MetricMeter:
        return _ConfusionMeter(self)
