"""MTAN: the Multi-Task Attention Network (Liu, Johns & Davison, CVPR 2019) as an architecture.

Any staged backbone (one that lists `Backbone.stages`, e.g. segnet) is the shared global
network.  Each task runs its own chain of soft-attention modules beside it; at stage s

    mask_s^t   = attention_s^t(tap_s)                        (s = 0)
    mask_s^t   = attention_s^t(cat(tap_s, carried_s^t))       (s > 0)
    masked_s^t = mask_s^t * output_s

with attention = conv1x1-BN-ReLU-conv1x1-BN-sigmoid (task-specific), and carried_s^t the
previous masked feature passed through a *shared* conv3x3-BN-ReLU, matched to stage s:

* after an encoder ("down") stage: conv (to the next stage's tap width if it is also a down
  stage, else to the same width), then 2x2 max-pooling;
* before a decoder ("up") stage: 2x bilinear upsampling (align_corners, as the reference), then
  conv to the stage's output width.

Task t's head reads masked^t of the last stage.  On segnet this reproduces the reference's
channel widths (`model_segnet_mtan.py`, Nash-MTL's `SegNetMtan`) layer for layer.

Shared parameters: the backbone's trunk and the shared transition convolutions; task
parameters: the attention modules and heads (as CAGrad's NYUv2 code, whose `shared_modules`
leave the attention out).  Nash-MTL's `SegNetMtan.shared_parameters` instead counts everything
but the heads as shared, so its MGDA / PCGrad / CAGrad / Nash-MTL steps also combine the
(per-task) attention gradients; `architecture: mtan_shared_attention` is that partition, for
reproducing its numbers.
There is no single shared representation (the attention sits inside the trunk), so
`forward_with_representation` returns None for z and MGDA-UB / GradDrop fail with a clear
error; parameter-gradient methods (mgda, pcgrad, cagrad, ...) work.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.models import ARCHITECTURES, Backbone, MTLModel, StageSpec
from mtlpareto.models.segnet import conv_bn_relu, init_segnet_weights


def attention_module(in_channels: int, channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(),
        nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.Sigmoid(),
    )


class MTAN(MTLModel):
    """Shared staged trunk, per-task attention chains on its stages, one head per task."""

    def __init__(self, trunk: nn.Module, stages: list[StageSpec], heads: list[nn.Module]) -> None:
        super().__init__()
        self.trunk = trunk
        self.stages = list(stages)
        self.heads = nn.ModuleList(heads)
        # transitions[s] carries task features from stage s-1 to stage s (index 0 unused: Identity).
        transitions: list[nn.Module] = [nn.Identity()]
        attention_inputs = [stages[0].tap_channels]
        for s in range(1, len(stages)):
            prev, cur = stages[s - 1], stages[s]
            if cur.direction == "down":
                if prev.direction != "down":
                    raise ConfigError("architecture mtan: an encoder (down) stage after a decoder (up) stage is not supported")
                transitions.append(conv_bn_relu(prev.out_channels, cur.tap_channels))
                attention_inputs.append(cur.tap_channels + cur.tap_channels)
            else:
                # After the last down stage the reference first convolves at the same width
                # (then pools), and every up stage convolves to its output width after upsampling.
                prev_width = prev.out_channels
                layers: list[nn.Module] = [conv_bn_relu(prev_width, prev_width)] if prev.direction == "down" else []
                layers.append(conv_bn_relu(prev_width, cur.out_channels))
                transitions.append(nn.ModuleList(layers))
                attention_inputs.append(cur.tap_channels + cur.out_channels)
        self.transitions = nn.ModuleList(transitions)
        self.attention = nn.ModuleList(
            nn.ModuleList(attention_module(c_in, spec.out_channels) for c_in, spec in zip(attention_inputs, stages))
            for _ in heads
        )
        init_segnet_weights(self.transitions)
        init_segnet_weights(self.attention)

    @property
    def n_tasks(self) -> int:
        return len(self.heads)

    def _carry(self, s: int, feature: torch.Tensor) -> torch.Tensor:
        """Task feature of stage s-1 to stage s, through the shared transition."""
        prev, cur = self.stages[s - 1], self.stages[s]
        transition = self.transitions[s]
        if cur.direction == "down":
            return F.max_pool2d(transition(feature), kernel_size=2, stride=2)
        layers = list(transition)
        if prev.direction == "down":
            feature = F.max_pool2d(layers.pop(0)(feature), kernel_size=2, stride=2)
        feature = F.interpolate(feature, scale_factor=2, mode="bilinear", align_corners=True)
        return layers[0](feature)

    def forward_with_representation(self, x: torch.Tensor) -> tuple[list[torch.Tensor], None]:
        taps = self.trunk.forward_stages(x)
        if len(taps) != len(self.stages):
            raise ConfigError(f"architecture mtan: {type(self.trunk).__name__}.forward_stages returned {len(taps)} stages, its Backbone.stages lists {len(self.stages)}")
        outputs = []
        for attention, head in zip(self.attention, self.heads):
            feature = None
            for s, (tap, out) in enumerate(taps):
                gate_input = tap if s == 0 else torch.cat((tap, self._carry(s, feature)), dim=1)
                feature = attention[s](gate_input) * out
            outputs.append(head(feature))
        return outputs, None

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.trunk.parameters()
        yield from self.transitions.parameters()

    def task_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.attention.parameters()
        yield from self.heads.parameters()


@ARCHITECTURES.register("mtan")
def mtan(backbone: Backbone) -> MTAN:
    check_staged(backbone, "mtan")
    return MTAN(backbone.encoder, backbone.stages, backbone.heads)


def check_staged(backbone: Backbone, architecture: str) -> None:
    if backbone.stages is None or not hasattr(backbone.encoder, "forward_stages"):
        raise ConfigError(
            f"architecture {architecture} needs a staged backbone (one listing Backbone.stages, e.g. segnet); "
            f"{type(backbone.encoder).__name__} has no stages"
        )
    if not backbone.stages:
        raise ConfigError(f"architecture {architecture}: the backbone lists no stages")


class MTANSharedAttention(MTAN):
    """MTAN with Nash-MTL's partition: everything but the heads is "shared" (attention included)."""

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from super().shared_parameters()
        yield from self.attention.parameters()

    def task_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.heads.parameters()


@ARCHITECTURES.register("mtan_shared_attention")
def mtan_shared_attention(backbone: Backbone) -> MTANSharedAttention:
    check_staged(backbone, "mtan_shared_attention")
    return MTANSharedAttention(backbone.encoder, backbone.stages, backbone.heads)
