"""Hard parameter sharing: z = encoder(x), y_t = heads[t](z) (Caruana 1997; Sener & Koltun's setting)."""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from mtlpareto.models import ARCHITECTURES, Backbone, MTLModel


class HardSharing(MTLModel):
    """The whole encoder is shared, each head belongs to its task; z is the encoder's output."""

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

    def forward_with_representation(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z

    def forward_with_task_representations(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor]]:
        z = self.encode(x)
        copies = [z.detach().requires_grad_(True) for _ in self.heads]
        return [head(c) for head, c in zip(self.heads, copies)], z, copies

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def task_parameters(self) -> Iterator[nn.Parameter]:
        return self.heads.parameters()

    def task_parameter_groups(self) -> list[list[nn.Parameter]]:
        return [list(head.parameters()) for head in self.heads]


@ARCHITECTURES.register("hard_sharing")
def hard_sharing(backbone: Backbone) -> HardSharing:
    return HardSharing(backbone.encoder, backbone.heads)
