"""ResNet-18 MTL network for CelebA (Sener & Koltun 2018, Sec. 4.2, App. C.2).

The shared encoder is torchvision's ResNet-18 without its final fully-connected layer; each task
gets one linear layer (2 outputs per binary attribute, trained with 2-class cross-entropy as in
the paper).  Weights start from torchvision's random initialisation (``weights=None``): nothing is
downloaded.

``stem`` picks the input stage:

* ``imagenet`` (default): torchvision's own 7x7 stride-2 convolution and max-pool.  A 64x64 image
  reaches layer4 at 2x2; global average pooling gives a 512-d representation (heads 512 x 2).
* ``cifar``: the official code's variant (``multi_faces_resnet.py``): a 3x3 stride-1 convolution
  and no max-pool, so a 64x64 image reaches layer4 at 8x8, and 4x4 average pooling leaves 2x2x512
  = 2048 features - the "2048 x 2 dimensional fully-connected layers" of App. C.2.  Same blocks,
  widths and initialisation otherwise.

``pretrained: true`` loads torchvision's ImageNet weights (``ResNet18_Weights.IMAGENET1K_V1``) from
the local torch hub cache only (``$TORCH_HOME/hub/checkpoints/``), checking the hash prefix in the
file name the way torch.hub does; it never downloads.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.models import MODELS, Backbone

STEMS = ("imagenet", "cifar")


def _after_stride2(size: int, times: int) -> int:
    # 3x3 (or 7x7) convolutions with stride 2 and "same" padding: out = ceil(in / 2).
    for _ in range(times):
        size = (size + 1) // 2
    return size


def pretrained_weights_path() -> tuple[Path, str]:
    """Where torch.hub keeps torchvision's ResNet-18 ImageNet weights, and their URL."""
    from torchvision.models import ResNet18_Weights

    url = ResNet18_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def _load_pretrained(net: nn.Module) -> None:
    path, url = pretrained_weights_path()
    if not path.is_file():
        raise ConfigError(
            f"model resnet18: pretrained: true needs torchvision's ImageNet weights at {path} (not downloaded here); "
            f"fetch {url} on a machine with network and copy it there (or set TORCH_HOME), or set pretrained: false"
        )
    # torch.hub names checkpoints <name>-<first 8+ hex digits of the SHA-256>.pth and checks them on download.
    match = re.search(r"-([a-f0-9]{8,})\.", path.name)
    if match:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(match.group(1)):
            raise ConfigError(f"model resnet18: {path} is corrupt (SHA-256 {digest[:12]}..., expected prefix {match.group(1)}); delete it and copy it again")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def resnet18_encoder(in_channels: int = 3, input_size: int = 64, stem: str = "imagenet", pretrained: bool = False) -> tuple[nn.Sequential, int]:
    """(torchvision ResNet-18 up to and including its pooling, flattened; representation size)."""
    from torchvision.models import resnet18 as tv_resnet18

    if stem not in STEMS:
        raise ConfigError(f"model resnet18: stem must be one of {', '.join(STEMS)}, got {stem!r}")
    if not isinstance(input_size, int) or input_size < 8:
        raise ConfigError(f"model resnet18: needs inputs of at least 8x8 pixels, got {input_size!r}")
    if pretrained and (stem != "imagenet" or in_channels != 3):
        raise ConfigError(
            f"model resnet18: pretrained ImageNet weights need stem: imagenet and 3 input channels "
            f"(got stem {stem!r}, {in_channels} channels)"
        )
    net = tv_resnet18(weights=None)
    if pretrained:
        _load_pretrained(net)
    if stem == "cifar":
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's conv init
        net.maxpool = nn.Identity()
        # layer4 runs at input/8; the official 4x4 average pooling leaves input/32 per side.
        side = max(1, _after_stride2(input_size, 3) // 4)
        net.avgpool = nn.AdaptiveAvgPool2d(side)
        representation = 512 * side * side
    else:
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        representation = 512  # torchvision's adaptive global average pooling
    encoder = nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4, net.avgpool, nn.Flatten()
    )
    return encoder, representation


@MODELS.register("resnet18")
def resnet18(
    task_outputs: list[int],
    in_channels: int = 3,
    input_size: int = 64,
    stem: str = "imagenet",
    pretrained: bool = False,
) -> Backbone:
    encoder, representation = resnet18_encoder(in_channels, input_size, stem, pretrained)
    heads = [nn.Linear(representation, n_out) for n_out in task_outputs]
    return Backbone(encoder, heads)
