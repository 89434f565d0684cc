"""The 4-conv CIFAR-100/20 network of Lin et al. 2020 (App. D)."""

from __future__ import annotations

from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.models import MODELS, Backbone


@MODELS.register("convnet")
def convnet(task_outputs: list[int], in_channels: int = 3, input_size: int = 32, width: int = 32, head_hidden: int = 64) -> Backbone:
    """Lin et al. 2020's CIFAR-100/20 network: four shared 3x3 conv layers, a 2-layer FC head per task.

    32x32 inputs: conv-conv-pool, conv-pool, conv-pool -> 2*width x 4 x 4; with width 32 and
    20 five-way heads of 64 hidden units that is ~1.38M parameters (the paper: 1.4M).
    """
    if input_size < 8:
        raise ConfigError(f"convnet needs inputs of at least 8x8 pixels, got {input_size}")
    size = input_size // 2 // 2 // 2
    encoder = nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    features = 2 * width * size * size
    heads = [nn.Sequential(nn.Linear(features, head_hidden), nn.ReLU(), nn.Linear(head_hidden, n)) for n in task_outputs]
    return Backbone(encoder, heads)
