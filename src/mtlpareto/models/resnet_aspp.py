"""Dilated ResNet-50 encoder with DeepLabV3 ASPP heads (Chen et al. 2017), as MPPS and LibMTL use on NYUv2.

``resnet34_aspp`` is the same over torchvision's ResNet-34 (BasicBlocks, 512 channels; DYMU's
NYU-v2 backbone): its strided stages are dilated by hand (`dilate_basic_stage`), since
torchvision's BasicBlock refuses dilation.

* Encoder (shared): torchvision's ResNet-50 without its average pooling and fc layer, with the
  strides of its last stages replaced by dilation (``replace_stride_with_dilation``), so the
  2048-channel feature map is at 1/``output_stride`` of the input: 8 (LibMTL, MTAN's ResNet
  variant; layer3 and layer4 dilated) or 16 (layer4 dilated).  That feature map is z, the
  shared representation MGDA-UB differentiates.
* Head (one per task): torchvision's ``DeepLabHead`` - ASPP (a 1x1 branch, three 3x3 atrous
  branches, an image-pooling branch; 256 channels each, projected to 256, dropout 0.5), a 3x3
  conv-BN-ReLU and a 1x1 conv to C_t channels - then bilinear upsampling (align_corners, as
  LibMTL) to the input size: outputs are [N, C_t, H, W].  Atrous rates default to DeepLabV3's
  (12, 24, 36) at output stride 8 and (6, 12, 18) at 16.

Inputs need a height and width divisible by ``output_stride``.  Weights start from
torchvision's random initialisation; ``pretrained: true`` loads torchvision's ImageNet weights
(``ResNet50_Weights.IMAGENET1K_V1``, what ``pretrained=True`` gave in those codebases) into the
encoder from the local torch hub cache only, checking the hash prefix in the file name; a
missing file fails with its expected path and URL (nothing is downloaded here).

In training mode the image-pooling branch's BatchNorm sees one value per channel and image, so
a batch needs at least 2 images (the head says so instead of torch's generic error).
BatchNorm keeps running statistics (buffers), so this model cannot be the target of the
controllable hypernetwork (``FunctionalTarget`` fails with a ConfigError naming the buffers).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.models import MODELS, Backbone
from mtlpareto.models.segnet import check_divisible

OUTPUT_STRIDES = (8, 16)
DEFAULT_ATROUS_RATES = {8: (12, 24, 36), 16: (6, 12, 18)}
FEATURE_CHANNELS = 2048


def hub_weights_path(weights) -> tuple[Path, str]:
    """Where torch.hub keeps torchvision's ImageNet weights `weights` (a weights enum), and their URL."""
    url = weights.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def pretrained_weights_path() -> tuple[Path, str]:
    """Where torch.hub keeps torchvision's ResNet-50 ImageNet weights, and their URL."""
    from torchvision.models import ResNet50_Weights

    return hub_weights_path(ResNet50_Weights.IMAGENET1K_V1)


def load_pretrained(net: nn.Module, weights=None, model: str = "resnet50_aspp") -> None:
    """Load torchvision's ImageNet `weights` (default ResNet-50's) into `net` from the local hub cache."""
    path, url = pretrained_weights_path() if weights is None else hub_weights_path(weights)
    if not path.is_file():
        raise ConfigError(
            f"model {model}: pretrained: true needs torchvision's ImageNet weights at {path} "
            f"(torchvision looks in $TORCH_HOME/hub/checkpoints/; nothing is downloaded here); fetch {url} on a "
            f"machine with network and copy it there (or point TORCH_HOME at a directory holding hub/checkpoints/), "
            f"or set pretrained: false"
        )
    # torch.hub names checkpoints <name>-<first 8+ hex digits of the SHA-256>.pth and checks them on download.
    match = re.search(r"-([a-f0-9]{8,})\.", path.name)
    if match:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(match.group(1)):
            raise ConfigError(f"model {model}: {path} is corrupt (SHA-256 {digest[:12]}..., expected prefix {match.group(1)}); delete it and copy it again")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


class DilatedResNetEncoder(nn.Module):
    """ResNet stem and layer1-4 with dilation: [N, 3, H, W] -> [N, C, H/os, W/os] (C: 2048 for ResNet-50, 512 for ResNet-34)."""

    def __init__(self, net: nn.Module, output_stride: int, model: str = "resnet50_aspp") -> None:
        super().__init__()
        self.output_stride = output_stride
        self.model = model
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_divisible(x.shape[-2], x.shape[-1], self.output_stride, self.model)
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


class ASPPHead(nn.Module):
    """DeepLabV3 head on the encoder's feature map, upsampled back to the input resolution."""

    def __init__(self, n_out: int, output_stride: int, atrous_rates: tuple[int, ...], in_channels: int = FEATURE_CHANNELS, model: str = "resnet50_aspp") -> None:
        super().__init__()
        from torchvision.models.segmentation.deeplabv3 import DeepLabHead

        self.output_stride = output_stride
        self.model = model
        self.deeplab = DeepLabHead(in_channels, n_out, atrous_rates=atrous_rates)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.training and z.shape[0] < 2:
            raise ConfigError(
                f"model {self.model}: the ASPP image-pooling branch (BatchNorm on one value per channel) needs at least "
                "2 images per training batch; choose a batch size that leaves no 1-image last batch"
            )
        out = self.deeplab(z)
        size = (z.shape[-2] * self.output_stride, z.shape[-1] * self.output_stride)
        return F.interpolate(out, size=size, mode="bilinear", align_corners=True)


def _atrous_rates(atrous_rates: list[int] | None, output_stride: int, model: str = "resnet50_aspp") -> tuple[int, ...]:
    if atrous_rates is None:
        return DEFAULT_ATROUS_RATES[output_stride]
    if not isinstance(atrous_rates, (list, tuple)) or not atrous_rates or not all(
        isinstance(r, int) and not isinstance(r, bool) and r >= 1 for r in atrous_rates
    ):
        raise ConfigError(f"model {model}: atrous_rates must be a non-empty list of positive integers or null, got {atrous_rates!r}")
    return tuple(atrous_rates)


def check_dilated_options(model: str, in_channels: int, input_size: int, output_stride: int, atrous_rates: list[int] | None, pretrained: bool) -> tuple[int, ...]:
    """The options every dilated encoder with ASPP heads shares, checked; returns the atrous rates."""
    if output_stride not in OUTPUT_STRIDES:
        raise ConfigError(f"model {model}: output_stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}, got {output_stride!r}")
    if not isinstance(pretrained, bool):
        raise ConfigError(f"model {model}: pretrained must be true or false, got {pretrained!r}")
    if pretrained and in_channels != 3:
        raise ConfigError(f"model {model}: pretrained ImageNet weights need 3 input channels, got {in_channels}")
    if input_size % output_stride or input_size < output_stride:
        raise ConfigError(f"model {model}: input width must be a positive multiple of output_stride {output_stride}, got {input_size}")
    return _atrous_rates(atrous_rates, output_stride, model)


@MODELS.register("resnet50_aspp")
def resnet50_aspp(
    task_outputs: list[int],
    in_channels: int = 3,
    input_size: int = 384,
    output_stride: int = 8,
    atrous_rates: list[int] | None = None,
    pretrained: bool = False,
) -> Backbone:
    """Shared dilated ResNet-50 encoder, one ASPP head per task with task_outputs[t] channels."""
    from torchvision.models import resnet50 as tv_resnet50

    rates = check_dilated_options("resnet50_aspp", in_channels, input_size, output_stride, atrous_rates, pretrained)
    # [layer2, layer3, layer4]: dilate instead of striding in the stages past the output stride.
    dilate = [False, True, True] if output_stride == 8 else [False, False, True]
    net = tv_resnet50(weights=None, replace_stride_with_dilation=dilate)
    if pretrained:
        load_pretrained(net)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's conv init
    encoder = DilatedResNetEncoder(net, output_stride)
    heads = [ASPPHead(n_out, output_stride, rates) for n_out in task_outputs]
    return Backbone(encoder, heads)


RESNET34_FEATURE_CHANNELS = 512


def dilate_basic_stage(stage: nn.Sequential, previous_dilation: int, dilation: int) -> None:
    """Turn a strided stage of BasicBlocks into a dilated one in place (what torchvision's
    ``replace_stride_with_dilation`` does for Bottlenecks, which BasicBlock refuses): no stride,
    the first block's 3x3 convolutions at `previous_dilation`, the others' at `dilation`."""
    for index, block in enumerate(stage):
        d = previous_dilation if index == 0 else dilation
        for conv in (block.conv1, block.conv2):
            conv.stride, conv.dilation, conv.padding = (1, 1), (d, d), (d, d)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


@MODELS.register("resnet34_aspp")
def resnet34_aspp(
    task_outputs: list[int],
    in_channels: int = 3,
    input_size: int = 384,
    output_stride: int = 8,
    atrous_rates: list[int] | None = None,
    pretrained: bool = False,
) -> Backbone:
    """ResNet-34 (torchvision's, BasicBlocks) as `resnet50_aspp`: dilated to 1/output_stride, 512
    channels, one ASPP head per task (DYMU's NYU-v2 anchor backbone; the paper's DeepLabV3+
    decoder's low-level skip is not modelled)."""
    from torchvision.models import ResNet34_Weights, resnet34 as tv_resnet34

    name = "resnet34_aspp"
    rates = check_dilated_options(name, in_channels, input_size, output_stride, atrous_rates, pretrained)
    net = tv_resnet34(weights=None)
    if pretrained:
        load_pretrained(net, ResNet34_Weights.IMAGENET1K_V1, name)
    if output_stride == 8:
        dilate_basic_stage(net.layer3, 1, 2)
        dilate_basic_stage(net.layer4, 2, 4)
    else:
        dilate_basic_stage(net.layer4, 1, 2)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    encoder = DilatedResNetEncoder(net, output_stride, name)
    heads = [ASPPHead(n_out, output_stride, rates, RESNET34_FEATURE_CHANNELS, name) for n_out in task_outputs]
    return Backbone(encoder, heads)
