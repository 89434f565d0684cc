"""Any registered weighting method in your own PyTorch training loop.

    step = MTLStep("mgda_ub", n_tasks=2, shared_parameters=encoder.parameters(), task_parameters=heads.parameters())
    ...
    losses = torch.stack([...])                       # one loss per task, [T]
    weights = step.backward(losses, representation=z) # sets .grad of the parameters; returns the weights
    optimizer.step()

The method sees your parameters through the same interface as the project's own models
(shared parameters, task parameters, the shared representation z), so every method of
`mtlpareto.methods.METHODS` that trains one network works; no pipeline is involved.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS, Method, StepContext, build_method
from mtlpareto.models import MTLModel


class _ParameterSplit(MTLModel):
    """Your parameters as an MTLModel for the StepContext: shared and task-specific."""

    def __init__(self, shared: list[nn.Parameter], task: list[nn.Parameter], n_tasks: int) -> None:
        super().__init__()
        # Plain attributes, not registered: this object never owns or saves them.
        object.__setattr__(self, "_shared", shared)
        object.__setattr__(self, "_task", task)
        object.__setattr__(self, "_n_tasks", n_tasks)

    @property
    def n_tasks(self) -> int:
        return self._n_tasks

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return iter(self._shared)

    def task_parameters(self) -> Iterator[nn.Parameter]:
        return iter(self._task)


class MTLStep:
    """One registered method applied to your model's parameters, step after step.

    `method` is a registry name (options as keyword arguments, e.g. `normalization="l2"`) or a
    built `Method`.  `preference` / `task` are for methods that need them (linear, single_task).
    Add `step.parameters()` to your optimiser: some methods learn weights (uncertainty).
    """

    def __init__(
        self,
        method: str | Method,
        n_tasks: int,
        shared_parameters: Iterable[nn.Parameter],
        task_parameters: Iterable[nn.Parameter] = (),
        jacobian: str = "loop",
        preference: tuple[float, ...] | None = None,
        task: int | None = None,
        **options,
    ) -> None:
        if isinstance(method, str):
            if method in METHODS and METHODS.get(method).learns != "network":
                raise ConfigError(f"{method!r} trains a hypernetwork, not your network; use one of the network methods")
            method = build_method({"name": method, **options}, n_tasks, preference=preference, task=task)
        elif options:
            raise ConfigError("options go with a method name, not with a built method")
        if method.needs_validation_batches:
            raise ConfigError(f"{type(method).__name__} learns from validation losses at other parameters (a virtual step), which MTLStep cannot evaluate for your loop; train it with `mtlpareto train`")
        self.method = method
        self.split = _ParameterSplit(list(shared_parameters), list(task_parameters), n_tasks)
        if not self.split._shared:
            raise ConfigError("MTLStep needs the shared parameters (e.g. encoder.parameters()); got none")
        self.jacobian = jacobian
        self.n_tasks = n_tasks
        self.steps = 0

    def parameters(self) -> list[nn.Parameter]:
        return self.method.parameters()

    def backward(self, losses: torch.Tensor, representation: torch.Tensor | None = None, epoch: int = 0) -> torch.Tensor:
        """Set the parameters' .grad from the task losses [T]; returns the task weights used.

        `representation` is the shared features z the heads read (MGDA-UB and GradDrop need it).
        """
        if losses.dim() != 1 or losses.numel() != self.n_tasks:
            raise ConfigError(f"losses must be a [T] tensor with T = {self.n_tasks}, got shape {tuple(losses.shape)}")
        if self.method.uses_representation and representation is None:
            raise ConfigError(f"{type(self.method).__name__} needs representation=z, the shared features the heads read")
        ctx = StepContext(self.split, losses, representation, step=self.steps, epoch=epoch, jacobian=self.jacobian)
        weights = self.method.backward(ctx)
        self.steps += 1
        return weights

    def after_step(self, losses: torch.Tensor) -> None:
        """For methods with `needs_losses_after_step` (FAMO): the same batch's task losses,
        evaluated after `optimizer.step()` (no gradients needed)."""
        self.method.after_step(losses)

    def end_epoch(self, epoch: int, mean_losses: torch.Tensor) -> None:
        """Call after each epoch with the epoch's mean task losses (DWA reads them)."""
        self.method.end_epoch(epoch, mean_losses)
