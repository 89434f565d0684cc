"""The "network" of a closed-form problem: its only parameter is the solution x (Lin et al. 2020, Sec. 6)."""

from __future__ import annotations

import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.models import MODELS, Backbone


class _Decision(nn.Module):
    """The decision vector x of a synthetic problem; forward returns it for every input row."""

    def __init__(self, dim: int, init_scale: float) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.zeros(dim))
        # Generated x start near 0 with this std (the synthetic Pareto set lies within ~0.5 of 0).
        self.hyper_init_std = {"x": init_scale}

    def forward(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        if inputs is None:
            return self.x
        return self.x.expand(inputs.shape[0], -1)


@MODELS.register("decision_vector")
def decision_vector(task_outputs: list[int], in_channels: int = 1, input_size: int = 1, init_scale: float = 0.1) -> Backbone:
    """The 'network' of a synthetic problem: its one parameter is the solution x (dim in_channels).

    With a hypernetwork on top, x = MLP(preference) is the paper's solution generator
    (Sec. 6).  Heads are identities: every objective reads x.
    """
    if not (isinstance(init_scale, (int, float)) and init_scale > 0):
        raise ConfigError(f"decision_vector init_scale must be > 0, got {init_scale!r}")
    return Backbone(_Decision(int(in_channels), float(init_scale)), [nn.Identity() for _ in task_outputs])
