"""MobileNetV2 encoder (Sandler et al. 2018) with DeepLabV3 ASPP heads: DYMU's PASCAL-Context backbone.

* Encoder (shared): torchvision's ``mobilenet_v2`` feature layers without the final 1x1
  convolution to 1280 channels and the classifier (as DeepLab's MobileNetV2 variant), so the
  320-channel feature map is at 1/``output_stride`` of the input.  Output stride 16 (default)
  or 8 replaces the strides of the last stride-2 blocks by dilated depthwise convolutions
  (DeepLab's rule: the block that loses its stride keeps the previous dilation, the next blocks
  use the new one).  The layers run as 8 *stages*: the stem convolution, then the paper's seven
  bottleneck sequences (expansion t, channels c, repeats n: 1/16/1, 6/24/2, 6/32/3, 6/64/4,
  6/96/3, 6/160/3, 6/320/1); DYMU's tree layers are these stages (`TREE_BLOCKS["mobilenetv2"]`).
* Head (one per task): the ASPP head of `models/resnet_aspp.py` on 320 channels (atrous rates
  (6, 12, 18) at output stride 16, (12, 24, 36) at 8), upsampled bilinearly to the input size:
  outputs are [N, C_t, H, W].  The paper's DeepLabV3+ decoder (a skip from low-level features)
  is not modelled.

Weights start from torchvision's random initialisation; ``pretrained: true`` loads torchvision's
ImageNet weights (``MobileNet_V2_Weights.IMAGENET1K_V1``) from the local torch hub cache only
(nothing is downloaded here; a missing file fails with its path and URL).  Inputs need a height
and width divisible by ``output_stride``.

    model: {name: mobilenetv2, output_stride: 16}     # in params.yaml; options: output_stride 8 | 16,
                                                      # atrous_rates [a, b, c] or null, pretrained
"""

from __future__ import annotations

from torch import nn

from mtlpareto.models import MODELS, Backbone
from mtlpareto.models.resnet_aspp import ASPPHead, check_dilated_options, load_pretrained
from mtlpareto.models.segnet import check_divisible

NAME = "mobilenetv2"
FEATURE_CHANNELS = 320
# feature-layer indices of each stage: the stem, then the seven bottleneck sequences
STAGE_LAYERS = ((0,), (1,), (2, 3), (4, 5, 6), (7, 8, 9, 10), (11, 12, 13), (14, 15, 16), (17,))


def depthwise_conv(block: nn.Module) -> nn.Conv2d | None:
    """The 3x3 depthwise convolution of an inverted-residual block (None for the stem)."""
    for m in block.modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1:
            return m
    return None


def dilate_features(features: nn.Sequential, output_stride: int) -> None:
    """Replace strides past `output_stride` by dilation of the depthwise convolutions, in place."""
    stride, dilation = 1, 1
    for layer in features:
        conv = depthwise_conv(layer)
        if conv is None:  # the stem: a plain strided convolution
            stride *= layer[0].stride[0]
            continue
        s = conv.stride[0]
        previous = dilation
        if stride * s > output_stride:
            dilation *= s
            conv.stride = (1, 1)
            d = previous  # the block that loses its stride keeps the previous dilation
        else:
            stride *= s
            d = dilation
        conv.dilation, conv.padding = (d, d), (d, d)


class MobileNetV2Encoder(nn.Module):
    """[N, C_in, H, W] -> [N, 320, H/os, W/os] through `stages` (an nn.ModuleList of 8 stages)."""

    def __init__(self, features: nn.Sequential, output_stride: int) -> None:
        super().__init__()
        self.output_stride = output_stride
        self.stages = nn.ModuleList(nn.Sequential(*(features[i] for i in layers)) for layers in STAGE_LAYERS)

    def forward(self, x):
        check_divisible(x.shape[-2], x.shape[-1], self.output_stride, NAME)
        for stage in self.stages:
            x = stage(x)
        return x


@MODELS.register(NAME)
def mobilenetv2(
    task_outputs: list[int],
    in_channels: int = 3,
    input_size: int = 512,
    output_stride: int = 16,
    atrous_rates: list[int] | None = None,
    pretrained: bool = False,
) -> Backbone:
    """Shared MobileNetV2 encoder, one ASPP head per task with task_outputs[t] channels."""
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    rates = check_dilated_options(NAME, in_channels, input_size, output_stride, atrous_rates, pretrained)
    net = mobilenet_v2(weights=None)
    if pretrained:
        load_pretrained(net, MobileNet_V2_Weights.IMAGENET1K_V1, NAME)
    features = net.features
    if in_channels != 3:
        stem = features[0][0]
        features[0][0] = nn.Conv2d(in_channels, stem.out_channels, kernel_size=3, stride=2, padding=1, bias=False)
        nn.init.kaiming_normal_(features[0][0].weight, mode="fan_out")  # torchvision's conv init
    dilate_features(features[:18], output_stride)
    encoder = MobileNetV2Encoder(features, output_stride)
    heads = [ASPPHead(n_out, output_stride, rates, FEATURE_CHANNELS, NAME) for n_out in task_outputs]
    return Backbone(encoder, heads)
