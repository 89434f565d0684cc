"""Surface normals: 1 - cosine on valid pixels; angle error statistics in degrees.

Targets are float [N, 3, H, W] unit vectors in the camera frame (the community's HxWx3 files,
channel first), all-zero at invalid pixels; the head outputs [N, 3, H, W], normalised to unit
length here before the loss and the metrics (the network need not output unit vectors).
Targets are normalised too, so float16 storage (relative error ~5e-4) does not bias angles.

Metrics over the split's valid pixels: mean and median angle between prediction and truth
(degrees) and the fractions of pixels within 11.25, 22.5 and 30 degrees.  The median is exact:
the meter keeps every valid pixel's angle as float32 (4 bytes a pixel: 49 MB for 1,000 images
at 96x128, 290 MB for NYUv2's 654 validation images at 288x384), sorted once in `compute`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mtlpareto.tasks import TASK_TYPES, MetricMeter, Task
from mtlpareto.tasks.segmentation import _check_shapes

THRESHOLDS_DEG = (11.25, 22.5, 30.0)


def valid_normal_pixels(target: torch.Tensor) -> torch.Tensor:
    """bool [N, H, W]: pixels whose target normal is not the all-zero 'invalid' vector."""
    return (target != 0).any(dim=1)


class _ChannelNorm(torch.autograd.Function):
    """The L2 norm over dim 1 of a contiguous float32 [N, C, H, W], keepdim: the values and the
    gradient of torch.linalg.vector_norm(x, dim=1, keepdim=True), bit for bit, ~10x faster.

    torch reduces a non-innermost dim of a contiguous tensor in a slow strided loop (4 ms for
    [8, 3, 64, 96] on one CPU thread, against ~0.1 ms here). Its float32 result is the
    sequential float32 sum of the squares with the square root taken in float64; its backward
    is grad * (x / norm), zero where the norm is zero. Tests check both bitwise against torch.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        squares = x * x
        acc = squares[:, 0:1]
        for c in range(1, x.shape[1]):
            acc = acc + squares[:, c : c + 1]
        norm = acc.double().sqrt().to(x.dtype)
        ctx.save_for_backward(x, norm)
        return norm

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x, norm = ctx.saved_tensors
        return grad * (x / norm).masked_fill_(norm == 0, 0)


def normalize_channels(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """F.normalize(x, dim=1, eps=eps), bit for bit (values and gradients), fast for the
    contiguous float32 [N, C, H, W] outputs of the dense heads; other inputs go to F.normalize."""
    if x.dtype != torch.float32 or x.dim() != 4 or not x.is_contiguous():
        return F.normalize(x, dim=1, eps=eps)
    return x / _ChannelNorm.apply(x).clamp_min(eps).expand_as(x)


def angle_errors_deg(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Angles (degrees, float64) between normalised prediction and truth at the valid pixels, flattened."""
    valid = valid_normal_pixels(target)
    # float64 keeps F.normalize: torch's float64 norm ends in libm's pow(sum, 0.5), which no torch op
    # reproduces bit for bit (torch.pow special-cases 0.5 as sqrt).
    predicted = F.normalize(output.double(), dim=1).permute(0, 2, 3, 1)[valid]
    truth = F.normalize(target.double(), dim=1).permute(0, 2, 3, 1)[valid]
    cosine = (predicted * truth).sum(-1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cosine))


class _AngleMeter(MetricMeter):
    def __init__(self, task: "SurfaceNormalTask") -> None:
        self.task = task
        self.angles: list[torch.Tensor] = []
        self.loss_sum = 0.0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        _check_shapes(self.task, output, target, 3, 4)
        angles = angle_errors_deg(output, target.to(output.dtype))
        self.loss_sum += float(self.task.loss(output.detach(), target)) * angles.numel()
        self.angles.append(angles.float().cpu())

    def compute(self) -> dict[str, float | None]:
        angles = torch.cat(self.angles) if self.angles else torch.zeros(0)
        if not angles.numel():
            return {name: None for name in self.task.metrics}
        angles = angles.double()
        # torch.median returns the lower middle value on even counts; the mean of both middle
        # values is the usual median (numpy's, MTAN's np.median).
        ordered = angles.sort().values
        n = ordered.numel()
        median = float(ordered[n // 2]) if n % 2 else float(ordered[n // 2 - 1 : n // 2 + 1].mean())
        out = {"mean_angle": round(float(angles.mean()), 6), "median_angle": round(median, 6)}
        for threshold, name in zip(THRESHOLDS_DEG, ("within_11_25", "within_22_5", "within_30")):
            out[name] = round(float((angles < threshold).double().mean()), 6)
        out["loss"] = round(self.loss_sum / n, 6)
        return out


@TASK_TYPES.register("surface_normals")
class SurfaceNormalTask(Task):
    """Per-pixel unit normal; see the module docstring."""

    type_name = "surface_normals"
    metrics = {
        "mean_angle": False,
        "median_angle": False,
        "within_11_25": True,
        "within_22_5": True,
        "within_30": True,
        "loss": False,
    }
    primary = "mean_angle"

    @property
    def out_channels(self) -> int:
        return 3

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_shapes(self, output, target, 3, 4)
        target = target.to(output.dtype)
        valid = valid_normal_pixels(target).to(output.dtype)
        cosine = (normalize_channels(output) * normalize_channels(target)).sum(1)
        # Mean of (1 - cos) over valid pixels; an all-invalid batch gives 0, not NaN.
        return ((1.0 - cosine) * valid).sum() / valid.sum().clamp_min(1)

    def meter(self) -> MetricMeter:
        return _AngleMeter(self)

