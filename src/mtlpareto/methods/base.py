"""What every MTL method sees at a training step, and the shared gradient helpers.

A method never writes its own backward loop: it asks the StepContext for per-task
gradients (w.r.t. shared parameters or w.r.t. the shared representation), computed in one
batched vector-Jacobian product, and then either weights the losses or sets the shared
gradient directly.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from mtlpareto.errors import ConfigError


def _batched_grad(outputs: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Rows of the Jacobian d outputs[t] / d inputs, all T at once (vmap over backward)."""
    eye = torch.eye(outputs.numel(), dtype=outputs.dtype, device=outputs.device)
    try:
        return list(
            torch.autograd.grad(outputs, inputs, grad_outputs=eye, is_grads_batched=True, retain_graph=True, allow_unused=True)
        )
    except RuntimeError as exc:  # an op without a batching rule: fall back to T backward passes
        if "vmap" not in str(exc) and "batch" not in str(exc).lower():
            raise
        rows = [torch.autograd.grad(outputs[t], inputs, retain_graph=True, allow_unused=True) for t in range(outputs.numel())]
        return [torch.stack([r[i] if r[i] is not None else torch.zeros_like(inputs[i]) for r in rows]) for i in range(len(inputs))]


class StepContext:
    """Losses of one mini-batch plus lazy per-task gradients, shared by all methods."""

    def __init__(self, model: nn.Module, losses: torch.Tensor, features: torch.Tensor, step: int = 0, epoch: int = 0) -> None:
        self.model = model
        self.losses = losses
        self.features = features
        self.step = step
        self.epoch = epoch
        self.shared_params = [p for p in model.shared_parameters() if p.requires_grad]
        self.task_params = [p for p in model.task_parameters() if p.requires_grad]

    @property
    def n_tasks(self) -> int:
        return self.losses.numel()

    def shared_jacobian(self) -> torch.Tensor:
        """[T, D] gradients of each task loss w.r.t. the shared (encoder) parameters."""
        grads = _batched_grad(self.losses, self.shared_params)
        return torch.cat(
            [(g if g is not None else torch.zeros(self.n_tasks, *p.shape)).reshape(self.n_tasks, -1) for g, p in zip(grads, self.shared_params)],
            dim=1,
        )

    def feature_jacobian(self) -> torch.Tensor:
        """[T, B*F] gradients of each task loss w.r.t. the shared representation z.

        Only the heads are traversed, so this costs T small head backwards, not T encoder
        backwards: the point of MGDA-UB.
        """
        (grads,) = _batched_grad(self.losses, [self.features])
        return grads.reshape(self.n_tasks, -1)

    def backward_weighted(self, weights: torch.Tensor) -> None:
        """One backward pass of sum_t w_t L_t (weights treated as constants)."""
        (weights.detach().to(self.losses) * self.losses).sum().backward()

    def set_shared_gradient(self, direction: torch.Tensor, head_weights: torch.Tensor) -> None:
        """Shared parameters get `direction` (flattened [D]); heads get grad of sum_t w_t L_t."""
        head_loss = (head_weights.detach().to(self.losses) * self.losses).sum()
        head_grads = torch.autograd.grad(head_loss, self.task_params, retain_graph=True, allow_unused=True)
        for p, g in zip(self.task_params, head_grads):
            p.grad = torch.zeros_like(p) if g is None else g
        offset = 0
        for p in self.shared_params:
            n = p.numel()
            p.grad = direction[offset : offset + n].view_as(p).to(p).clone()
            offset += n


class Method:
    """Base class. Subclasses implement `backward` and may keep state across steps.

    sweep: "none" (one run per seed), "preferences" (one run per preference-grid point) or
    "tasks" (one run per task, e.g. single-task baselines).
    """

    sweep: ClassVar[str] = "none"
    label: ClassVar[str | None] = None  # name shown in tables and figures
    trainer: ClassVar[str] = "standard"  # key in mtlpareto.training.TRAINERS

    def __init__(self, n_tasks: int, preference: tuple[float, ...] | None = None, task: int | None = None) -> None:
        self.n_tasks = n_tasks
        self.preference = preference
        self.task = task

    def parameters(self) -> list[nn.Parameter]:
        """Extra trainable parameters (e.g. learned loss weights), added to the optimiser."""
        return []

    def backward(self, ctx: StepContext) -> torch.Tensor:
        """Set .grad of the model's parameters for this step; return the task weights used [T]."""
        raise NotImplementedError

    def end_epoch(self, epoch: int, mean_losses: torch.Tensor) -> None:
        """Hook called with the epoch's mean task losses (e.g. DWA's loss history)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def preference_tensor(preference: tuple[float, ...] | None, n_tasks: int, method: str) -> torch.Tensor:
    if preference is None:
        raise ConfigError(f"method {method!r} needs a preference vector (it sweeps the preference grid)")
    if len(preference) != n_tasks:
        raise ConfigError(f"method {method!r}: preference has {len(preference)} entries for {n_tasks} tasks")
    return torch.tensor(preference, dtype=torch.float32)
