"""Saliency: a binary foreground mask; balanced cross-entropy; mIoU and max F over thresholds.

Targets are binary maps [N, H, W] (uint8 on disk; any integer or bool dtype) with 0 for
background and 1 for salient pixels; the head outputs logits [N, 1, H, W].

Loss: the "balanced" cross-entropy of ASTMT and MTI-Net (Maninis et al. 2019, Vandenhende et
al. 2020, after HED).  With b_p the binary cross-entropy of pixel p's logit,

    L = (w * sum_{p positive} b_p + (1 - w) * sum_{p negative} b_p) / (pixels of the batch)

where w is `pos_weight`, or, when it is None (MTI-Net's saliency loss), the batch's fraction
of negative pixels, so the rarer class weighs more.  `pos_weight: 0.5` is half the plain mean
binary cross-entropy.  Edge detection (tasks/edges.py) uses the same loss with a fixed w.

Metrics (the published protocol: ASTMT's eval_sal and MTI-Net's SaliencyMeter): the
probability sigmoid(logit) is thresholded at the 15 values linspace(0.2, 0.9); per image and
threshold come the IoU of the foreground (1 when prediction and truth are both empty), the
precision TP / (TP + FP) and the recall TP / (TP + FN) (0 when the denominator is 0); each is
averaged over the images of the split, then

    miou  = max over thresholds of the mean IoU,
    max_f = max over thresholds of 2 P R / (P + R), P and R the mean precision and recall.

Both are fractions in [0, 1].  Unlike segmentation's one confusion matrix per split these are
means over images, as the papers compute them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from mtlpareto.errors import ConfigError
from mtlpareto.tasks import TASK_TYPES, MetricMeter, Task
from mtlpareto.tasks.segmentation import _check_shapes

SALIENCY_THRESHOLDS = tuple(0.2 + 0.05 * k for k in range(15))  # numpy's linspace(0.2, 0.9, 15)


def check_binary_target(task: Task, target: torch.Tensor) -> torch.Tensor:
    """The target as a float 0/1 map; anything but 0 and 1 is refused (no silent rounding)."""
    if target.numel() and (int(target.min()) < 0 or int(target.max()) > 1 or (target.is_floating_point() and bool((target != target.round()).any()))):
        raise ValueError(f"task {task.name!r} ({task.type_name}): targets must be 0 or 1, found values in {float(target.min())}..{float(target.max())}")
    return target.float()


def balanced_bce(logits: torch.Tensor, target: torch.Tensor, pos_weight: float | None) -> torch.Tensor:
    """(w * sum of positive pixels' BCE + (1 - w) * sum of negative pixels' BCE) / pixels; see the module docstring.

    `logits` and `target` (0/1 floats) have the same shape; w = `pos_weight`, or the batch's
    fraction of negative pixels when it is None.
    """
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    positive = target
    if pos_weight is None:
        pos_weight_t = (1.0 - positive).sum() / max(positive.numel(), 1)
    else:
        pos_weight_t = torch.tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    total = pos_weight_t * (per_pixel * positive).sum() + (1.0 - pos_weight_t) * (per_pixel * (1.0 - positive)).sum()
    return total / max(per_pixel.numel(), 1)


def _check_pos_weight(name: str, pos_weight: Any, allow_none: bool) -> float | None:
    if pos_weight is None and allow_none:
        return None
    if isinstance(pos_weight, bool) or not isinstance(pos_weight, (int, float)) or not 0.0 < pos_weight < 1.0:
        also = " or null (the batch's fraction of negative pixels)" if allow_none else ""
        raise ConfigError(f"task {name!r}: pos_weight must be a number in (0, 1){also}, got {pos_weight!r}")
    return float(pos_weight)


class BinaryMapTask(Task):
    """A per-pixel binary map (one logit channel) trained with the balanced cross-entropy."""

    def __init__(self, name: str, pos_weight: float | None = None) -> None:
        super().__init__(name)
        self.pos_weight = _check_pos_weight(name, pos_weight, allow_none=True)

    @property
    def out_channels(self) -> int:
        return 1

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_shapes(self, output, target, 1, 3)
        return balanced_bce(output[:, 0], check_binary_target(self, target).to(output.dtype), self.pos_weight)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "pos_weight": self.pos_weight}


class _SaliencyMeter(MetricMeter):
    def __init__(self, task: "SaliencyTask") -> None:
        self.task = task
        self.thresholds = torch.tensor(SALIENCY_THRESHOLDS, dtype=torch.float64)
        self.iou: list[torch.Tensor] = []  # [images, thresholds] per batch
        self.precision: list[torch.Tensor] = []
        self.recall: list[torch.Tensor] = []
        self.loss_sum = 0.0
        self.pixels = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        _check_shapes(self.task, output, target, 1, 3)
        truth = check_binary_target(self.task, target).bool().cpu()
        probability = torch.sigmoid(output[:, 0].detach().double()).cpu()
        predicted = probability[:, None] > self.thresholds[None, :, None, None]  # [N, thresholds, H, W]
        truth = truth[:, None]
        tp = (predicted & truth).sum((2, 3)).double()
        fp = (predicted & ~truth).sum((2, 3)).double()
        fn = (~predicted & truth).sum((2, 3)).double()
        union = tp + fp + fn
        self.iou.append(torch.where(union > 0, tp / union.clamp_min(1), torch.ones_like(tp)))
        self.precision.append(torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), torch.zeros_like(tp)))
        self.recall.append(torch.where(tp + fn > 0, tp / (tp + fn).clamp_min(1), torch.zeros_like(tp)))
        self.loss_sum += float(self.task.loss(output.detach(), target)) * target.numel()
        self.pixels += target.numel()

    def compute(self) -> dict[str, float | None]:
        if not self.iou:
            return {"miou": None, "max_f": None, "loss": None}
        mean_iou = torch.cat(self.iou).mean(0)
        precision, recall = torch.cat(self.precision).mean(0), torch.cat(self.recall).mean(0)
        f = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-300), torch.zeros_like(precision))
        return {"miou": round(float(mean_iou.max()), 6), "max_f": round(float(f.max()), 6), "loss": round(self.loss_sum / self.pixels, 6)}


@TASK_TYPES.register("saliency")
class SaliencyTask(BinaryMapTask):
    """Salient-object mask; see the module docstring (pos_weight None: MTI-Net's batch balance)."""

    type_name = "saliency"
    metrics = {"miou": True, "max_f": True, "loss": False}
    primary = "miou"  # ASTMT's tables report saliency mIoU; MTI-Net's maxF is reported beside it

    def meter(self) -> MetricMeter:
        return _SaliencyMeter(self)
