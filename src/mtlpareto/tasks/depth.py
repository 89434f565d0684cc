"""Depth (or disparity) regression: L1 on valid pixels; absolute and relative error.

Targets are float [N, 1, H, W] (the community's HxWx1 files with the channel moved first; the
head outputs [N, 1, H, W] too), in metres for NYUv2 depth, in the dataset's disparity units
for Cityscapes; 0 marks an invalid pixel (no sensor reading) and counts nowhere.  float16
targets are promoted to the output's dtype.

Over a split: abs_err = sum |p - t| / valid pixels and rel_err = sum |p - t| / t / valid
pixels, both over every valid pixel of the split (MTAN averages per-batch means instead, which
weights batches with few valid pixels more; the difference vanishes with equal batches).
"""

from __future__ import annotations

import torch

from mtlpareto.tasks import TASK_TYPES, MetricMeter, Task
from mtlpareto.tasks.segmentation import _check_shapes


class _DepthMeter(MetricMeter):
    def __init__(self, task: "DepthTask") -> None:
        self.task = task
        self.abs_sum = 0.0
        self.rel_sum = 0.0
        self.count = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        _check_shapes(self.task, output, target, 1, 4)
        target = target.to(output.dtype)
        valid = target != 0
        error = (output - target).abs()[valid].double()
        self.abs_sum += float(error.sum())
        self.rel_sum += float((error / target[valid].double().abs()).sum())
        self.count += int(valid.sum())

    def compute(self) -> dict[str, float | None]:
        if not self.count:
            return {"abs_err": None, "rel_err": None, "loss": None}
        abs_err = round(self.abs_sum / self.count, 6)
        # The training loss is the same L1 on valid pixels: reported under both names for the tables.
        return {"abs_err": abs_err, "rel_err": round(self.rel_sum / self.count, 6), "loss": abs_err}


@TASK_TYPES.register("depth")
class DepthTask(Task):
    """Per-pixel depth or disparity, 0 = invalid; see the module docstring."""

    type_name = "depth"
    metrics = {"abs_err": False, "rel_err": False, "loss": False}
    primary = "abs_err"

    @property
    def out_channels(self) -> int:
        return 1

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_shapes(self, output, target, 1, 4)
        target = target.to(output.dtype)
        valid = (target != 0).to(output.dtype)
        # Sum / valid pixels (at least 1): an all-invalid batch gives 0, not NaN.
        return ((output - target).abs() * valid).sum() / valid.sum().clamp_min(1)

    def meter(self) -> MetricMeter:
        return _DepthMeter(self)
