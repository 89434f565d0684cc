"""Instance offsets (Sener & Koltun 2018, Cityscapes): per-pixel vector to the instance centre.

Targets are float [N, 2, H, W]: for a pixel of an instance (a car, a person, ...) the (dy, dx)
from the pixel to its instance's centroid, in pixels of the stored resolution; pixels of no
instance hold `ignore_value` in both channels (250, the value Sener & Koltun's official code
masks out).  The head outputs [N, 2, H, W].  Loss and metric are the L1 error averaged over the
coordinates of instance pixels (the paper's Table 4 "instance L1").
"""

from __future__ import annotations

from typing import Any

import torch

from mtlpareto.errors import ConfigError
from mtlpareto.tasks import TASK_TYPES, MetricMeter, Task
from mtlpareto.tasks.segmentation import _check_shapes

IGNORE_VALUE = 250.0


class _OffsetMeter(MetricMeter):
    def __init__(self, task: "InstanceOffsetTask") -> None:
        self.task = task
        self.abs_sum = 0.0
        self.count = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        _check_shapes(self.task, output, target, 2, 4)
        target = target.to(output.dtype)
        valid = self.task.instance_pixels(target).unsqueeze(1).expand_as(target)
        self.abs_sum += float((output - target).abs()[valid].double().sum())
        self.count += int(valid.sum())

    def compute(self) -> dict[str, float | None]:
        if not self.count:
            return {"l1_err": None, "loss": None}
        error = round(self.abs_sum / self.count, 6)
        return {"l1_err": error, "loss": error}


@TASK_TYPES.register("instance_offsets")
class InstanceOffsetTask(Task):
    """Offsets to the instance centre on instance pixels; see the module docstring."""

    type_name = "instance_offsets"
    metrics = {"l1_err": False, "loss": False}
    primary = "l1_err"

    def __init__(self, name: str, ignore_value: float = IGNORE_VALUE) -> None:
        super().__init__(name)
        if isinstance(ignore_value, bool) or not isinstance(ignore_value, (int, float)):
            raise ConfigError(f"task {name!r}: ignore_value must be a number, got {ignore_value!r}")
        self.ignore_value = float(ignore_value)

    @property
    def out_channels(self) -> int:
        return 2

    def instance_pixels(self, target: torch.Tensor) -> torch.Tensor:
        """bool [N, H, W]: pixels of an instance (not `ignore_value` in both channels)."""
        return (target != self.ignore_value).any(dim=1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_shapes(self, output, target, 2, 4)
        target = target.to(output.dtype)
        valid = self.instance_pixels(target).unsqueeze(1).to(output.dtype)
        error = (output - target).abs() * valid
        return error.sum() / (2 * valid.sum()).clamp_min(1)

    def meter(self) -> MetricMeter:
        return _OffsetMeter(self)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "ignore_value": self.ignore_value}
