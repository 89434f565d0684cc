"""MTL networks behind one registry: a shared encoder and one head per task."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

from mtlpareto.registry import Registry

MODELS: Registry[Callable[..., "MTLModel"]] = Registry("model")


class MTLModel(nn.Module):
    """Hard parameter sharing: z = encoder(x), y_t = heads[t](z).

    Methods see this split: MGDA needs gradients w.r.t. the encoder's parameters,
    MGDA-UB w.r.t. the representation z.
    """

    def __init__(self, encoder: nn.Module, heads: list[nn.Module]) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleList(heads)

    @property
    def n_tasks(self) -> int:
        return len(self.heads)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> list[torch.Tensor]:
        return [head(z) for head in self.heads]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def task_parameters(self) -> Iterator[nn.Parameter]:
        return self.heads.parameters()


def build_model(name: str, task_outputs: list[int], input_shape: tuple[int, ...], **options) -> MTLModel:
    return MODELS.get(name)(task_outputs=task_outputs, in_channels=input_shape[0], input_size=input_shape[-1], **options)


# Registry lines: one per model file.
from mtlpareto.models import lenet  # noqa: E402,F401
from mtlpareto.models import resnet  # noqa: E402,F401
from mtlpareto.models import hypernet  # noqa: E402,F401
