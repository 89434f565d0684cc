"""Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, Eq. 7).

w_t(e) = T * softmax_t(r_t(e-1) / temperature),  r_t(e-1) = L_t(e-1) / L_t(e-2),
with L_t(e) the mean training loss of task t over epoch e (what the trainer passes to
`end_epoch`). The first two epochs have no loss ratio yet and use w_t = 1.
"""

from __future__ import annotations

import torch

from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, StepContext, check_number


def dwa_weights(previous: torch.Tensor, before_previous: torch.Tensor, temperature: float) -> torch.Tensor:
    """T * softmax(r / temperature) with r_t = previous_t / before_previous_t."""
    ratio = previous / before_previous
    return previous.numel() * torch.softmax(ratio / temperature, dim=0)


@METHODS.register("dwa")
class DWA(Method):
    label = "DWA"

    def __init__(self, n_tasks: int, preference=None, task=None, temperature: float = 2.0) -> None:
        super().__init__(n_tasks, preference, task)
        self.temperature = float(check_number(temperature, "temperature", "dwa", low=0.0, low_open=True))
        self.history: list[torch.Tensor] = []  # the last two epoch-mean loss vectors, oldest first
        self.weights = torch.ones(n_tasks)

    def backward(self, ctx: StepContext) -> torch.Tensor:
        ctx.backward_weighted(self.weights)
        return self.weights

    def end_epoch(self, epoch: int, mean_losses: torch.Tensor) -> None:
        self.history = (self.history + [mean_losses.detach().cpu().double()])[-2:]
        if len(self.history) == 2:
            self.weights = dwa_weights(self.history[1], self.history[0], self.temperature).float()

    def state_dict(self) -> dict:
        return {"history": [h.clone() for h in self.history], "weights": self.weights.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.history = [h.clone() for h in state["history"]]
        self.weights = state["weights"].clone()
