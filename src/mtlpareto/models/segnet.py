"""The multi-task SegNet of MTAN's and Nash-MTL's NYUv2 experiments (Liu et al. 2019; Navon et al. 2022).

A VGG-16-like encoder-decoder (Badrinarayanan et al. 2017) with five stages each way:

* encoder stage i (i = 0..4, widths 64, 128, 256, 512, 512): 2, 2, 3, 3, 3 conv3x3-BN-ReLU
  layers, then 2x2 max-pooling that keeps its indices;
* decoder stage k (k = 4..0): max-unpooling with stage k's indices, then 3, 3, 3, 2, 2 layers;
  the first maps stage k's width to stage k-1's (stage 0: 64 to 64);
* one head per task: conv3x3 (64 to 64) then conv1x1 (64 to C_t), no activation between, as
  in the reference code (`model_segnet_split.py` "standard", Nash-MTL's `SegNetSplit`).

What is shared follows that reference: the whole encoder-decoder is the shared trunk and z is
its full-resolution 64-channel output, what MGDA-UB differentiates; only the two-layer heads
are task-specific.  At width 1 with one 13-class head this is the reference's single-task
network, 24,981,069 parameters (the constant the MTAN code divides by; tested).  Heads return raw
[N, C_t, H, W] maps: log-softmax or normalising the normals belongs to the task's loss.

``width`` multiplies every channel count (0.25 gives widths 16, 32, 64, 128, 128), so a small
SegNet trains on CPU.  Inputs need a height and width divisible by 32 (five poolings).
Convolutions start from Xavier-normal weights and zero biases, as in the reference.

Unpooling is ``nn.MaxUnpool2d``.  Under ``torch.use_deterministic_algorithms(True, warn_only=True)``
torch warns that it has no deterministic implementation; with 2x2 stride-2 windows every output
pixel is written by at most one input, so forward (a scatter) and backward (a gather) are
deterministic all the same (a gather-based rewrite measured 17x slower per unpooling on CPU).

The stages are listed in ``Backbone.stages`` (taps: an encoder stage's first layer output, a
decoder stage's unpooled input), so ``architecture: mtan`` can put task attention on them.

BatchNorm keeps running statistics (buffers), so a SegNet cannot be the target of the
controllable hypernetwork (``models/hypernet.py`` ``FunctionalTarget`` generates parameters
only); ``ctrl_*`` / ``phn_*`` methods on it fail with a ConfigError naming the buffers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.models import MODELS, Backbone, StageSpec

BASE_WIDTHS = (64, 128, 256, 512, 512)
ENCODER_DEPTHS = (2, 2, 3, 3, 3)  # conv layers per encoder stage (VGG-16's 13)
DOWNSAMPLING = 2 ** len(BASE_WIDTHS)


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU())


def init_segnet_weights(module: nn.Module) -> None:
    """The reference's initialisation: Xavier-normal conv weights, zero biases, BatchNorm (1, 0)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def segnet_widths(width: float) -> list[int]:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width) or width <= 0:
        raise ConfigError(f"model segnet: width must be a positive number (channel multiplier), got {width!r}")
    return [max(1, round(base * width)) for base in BASE_WIDTHS]


def check_divisible(height: int, width: int, factor: int, model: str) -> None:
    if height % factor or width % factor or height < factor or width < factor:
        raise ConfigError(
            f"model {model}: input height and width must be positive multiples of {factor} "
            f"(its downsampling factor), got {height}x{width}; resize or crop the images"
        )


class SegNetTrunk(nn.Module):
    """The shared encoder-decoder; `forward(x)` is the last decoder stage's output (z)."""

    def __init__(self, in_channels: int, widths: list[int]) -> None:
        super().__init__()
        self.widths = widths
        self.encoder_stages = nn.ModuleList()
        c_in = in_channels
        for width, depth in zip(widths, ENCODER_DEPTHS):
            self.encoder_stages.append(nn.ModuleList([conv_bn_relu(c_in, width), nn.Sequential(*(conv_bn_relu(width, width) for _ in range(depth - 1)))]))
            c_in = width
        # decoder_stages[j] runs j-th (resolution stage k = 4 - j): widths k -> k-1 (k = 0: 0 -> 0);
        # the mirror of the encoder's depths (3, 3, 3, 2, 2) as in the reference.
        self.decoder_stages = nn.ModuleList()
        for k in reversed(range(len(widths))):
            c_out = widths[max(k - 1, 0)]
            depth = ENCODER_DEPTHS[k]
            self.decoder_stages.append(nn.ModuleList([conv_bn_relu(widths[k], c_out), nn.Sequential(*(conv_bn_relu(c_out, c_out) for _ in range(depth - 1)))]))
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, stride=2)

    @property
    def stage_specs(self) -> list[StageSpec]:
        w = self.widths
        encoder = [StageSpec(tap_channels=c, out_channels=c, direction="down") for c in w]
        decoder = [StageSpec(tap_channels=w[k], out_channels=w[max(k - 1, 0)], direction="up") for k in reversed(range(len(w)))]
        return encoder + decoder

    def forward_stages(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(tap, output) per stage: encoder stages 0..4, then decoder stages 4..0."""
        check_divisible(x.shape[-2], x.shape[-1], DOWNSAMPLING, "segnet")
        taps: list[tuple[torch.Tensor, torch.Tensor]] = []
        indices = []
        h = x
        for first, rest in self.encoder_stages:
            tap = first(h)
            out = rest(tap)
            taps.append((tap, out))
            h, idx = self.pool(out)
            indices.append(idx)
        for (first, rest), idx in zip(self.decoder_stages, reversed(indices)):
            tap = self.unpool(h, idx)
            h = rest(first(tap))
            taps.append((tap, h))
        return taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[-1][1]


def segnet_head(channels: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.Conv2d(channels, n_out, 1))


@MODELS.register("segnet")
def segnet(task_outputs: list[int], in_channels: int = 3, input_size: int = 384, width: float = 1.0) -> Backbone:
    """SegNet trunk (shared) and one conv3x3-conv1x1 head per task with task_outputs[t] channels."""
    widths = segnet_widths(width)
    if input_size % DOWNSAMPLING or input_size < DOWNSAMPLING:
        raise ConfigError(f"model segnet: input width must be a positive multiple of {DOWNSAMPLING} (five 2x2 poolings), got {input_size}")
    trunk = SegNetTrunk(in_channels, widths)
    heads = [segnet_head(widths[0], n_out) for n_out in task_outputs]
    for module in (trunk, *heads):
        init_segnet_weights(module)
    return Backbone(trunk, heads, stages=trunk.stage_specs)
