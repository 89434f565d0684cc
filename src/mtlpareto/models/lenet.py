"""The LeNet-based MultiMNIST network of Sener & Koltun 2018 (App. C.1, Fig. 5).

All LeNet layers but the last form the shared encoder (two conv + pool layers and a
fully-connected layer to a 50-d representation); each task has two fully-connected layers.
"""

from __future__ import annotations

from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.models import MODELS, Backbone


def lenet_encoder(in_channels: int, input_size: int, representation: int, dropout: float) -> nn.Sequential:
    # 28x28 -> conv5 24 -> pool 12 -> conv5 8 -> pool 4: 20*4*4 = 320 features, as in the official code.
    size = ((input_size - 4) // 2 - 4) // 2
    if size < 1:
        raise ConfigError(f"lenet needs inputs of at least 16x16 pixels, got {input_size}")
    return nn.Sequential(
        nn.Conv2d(in_channels, 10, kernel_size=5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(10, 20, kernel_size=5),
        nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(20 * size * size, representation),
        nn.ReLU(),
    )


@MODELS.register("lenet")
def lenet(
    task_outputs: list[int],
    in_channels: int = 1,
    input_size: int = 28,
    representation: int = 50,
    head_hidden: int = 50,
    dropout: float = 0.0,
) -> Backbone:
    encoder = lenet_encoder(in_channels, input_size, representation, dropout)
    heads = [
        nn.Sequential(nn.Linear(representation, head_hidden), nn.ReLU(), nn.Linear(head_hidden, n_out))
        for n_out in task_outputs
    ]
    return Backbone(encoder, heads)
