"""What every MTL method sees at a training step, and the shared gradient helpers.

A method never writes its own backward loop: it asks the StepContext for per-task
gradients (w.r.t. shared parameters or w.r.t. the shared representation), computed by one
helper (`jacobian_rows`: a vmapped vector-Jacobian product or T backward passes; the training
loop picks the mode), and then either weights the losses or sets the shared gradient
directly.  The context reads the architecture only through the `MTLModel` interface (shared
and task parameters, the representation), so a method runs on every architecture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, ClassVar

import torch
from torch import nn

from mtlpareto.errors import ConfigError

if TYPE_CHECKING:
    from mtlpareto.models import MTLModel


JACOBIAN_MODES = ("batched", "loop")


def _loop_grad(outputs: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    rows = [torch.autograd.grad(outputs[t], inputs, retain_graph=True, allow_unused=True) for t in range(outputs.numel())]
    return [torch.stack([r[i] if r[i] is not None else torch.zeros_like(inputs[i]) for r in rows]) for i in range(len(inputs))]


def _loop_jacobian_matrix(outputs: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
    """[T, D] Jacobian of outputs [T] w.r.t. inputs (flattened, concatenated) by T backward passes.

    Each row is written once into the result (no [T, ...] stack per input, then a second copy
    into [T, D]: for ResNet-18 at T = 40 that is 1.8 GB moved twice).
    """
    sizes = [x.numel() for x in inputs]
    out = torch.empty(outputs.numel(), sum(sizes), dtype=inputs[0].dtype, device=inputs[0].device)
    for t in range(outputs.numel()):
        row = torch.autograd.grad(outputs[t], inputs, retain_graph=True, allow_unused=True)
        start = 0
        for g, n in zip(row, sizes):
            if g is None:
                out[t, start : start + n].zero_()
            else:
                out[t, start : start + n].copy_(g.reshape(-1))
            start += n
    return out


def jacobian_rows(outputs: torch.Tensor, inputs: list[torch.Tensor], mode: str = "batched") -> list[torch.Tensor]:
    """Rows of the Jacobian d outputs[t] / d inputs: per input a [T, *input.shape] tensor.

    "batched" computes all T rows in one vmapped backward (torch.autograd.grad with
    is_grads_batched); "loop" runs T backward passes through the same retained graph.
    """
    if mode == "loop":
        return _loop_grad(outputs, inputs)
    eye = torch.eye(outputs.numel(), dtype=outputs.dtype, device=outputs.device)
    try:
        grads = torch.autograd.grad(outputs, inputs, grad_outputs=eye, is_grads_batched=True, retain_graph=True, allow_unused=True)
    except RuntimeError as exc:  # an op without a batching rule: fall back to T backward passes
        if "vmap" not in str(exc) and "batch" not in str(exc).lower():
            raise
        return _loop_grad(outputs, inputs)
    return [g if g is not None else torch.zeros(outputs.numel(), *x.shape, dtype=x.dtype, device=x.device) for g, x in zip(grads, inputs)]


def vjp_rows(output: torch.Tensor, inputs: list[torch.Tensor], cotangents: torch.Tensor, mode: str = "batched") -> list[torch.Tensor]:
    """Rows cotangents[t]^T d output / d inputs: per input a [T, *input.shape] tensor."""
    if mode == "loop":
        rows = [torch.autograd.grad(output, inputs, grad_outputs=c, retain_graph=True, allow_unused=True) for c in cotangents]
        return [torch.stack([r[i] if r[i] is not None else torch.zeros_like(inputs[i]) for r in rows]) for i in range(len(inputs))]
    grads = torch.autograd.grad(output, inputs, grad_outputs=cotangents, is_grads_batched=True, retain_graph=True, allow_unused=True)
    return [g if g is not None else torch.zeros(cotangents.shape[0], *x.shape, dtype=x.dtype, device=x.device) for g, x in zip(grads, inputs)]


class StepContext:
    """Losses of one mini-batch plus lazy per-task gradients, shared by all methods."""

    def __init__(
        self,
        model: "MTLModel",
        losses: torch.Tensor,
        representation: torch.Tensor | None,
        step: int = 0,
        epoch: int = 0,
        jacobian: str = "batched",
        task_representations: list[torch.Tensor] | None = None,
    ) -> None:
        if jacobian not in JACOBIAN_MODES:
            raise ConfigError(f"jacobian: {jacobian!r} is not one of {', '.join(JACOBIAN_MODES)}")
        if task_representations is not None and (representation is None or len(task_representations) != losses.numel()):
            raise ValueError("task_representations needs the shared representation and one leaf copy per task")
        self.model = model
        self.losses = losses
        self.representation = representation
        # Leaf copies z_t of z, head t reading z_t (MTLModel.forward_with_task_representations):
        # then one backward through the heads gives every dL_t/dz, and the graph from the
        # losses stops at the copies, so the encoder is reached only through `representation`.
        self.task_representations = task_representations
        self._feature_grads: torch.Tensor | None = None
        self._head_grads: list[list[tuple[torch.Tensor, torch.Tensor | None]]] | None = None
        self.step = step
        self.epoch = epoch
        self.jacobian = jacobian
        self.shared_params = [p for p in model.shared_parameters() if p.requires_grad]
        self.task_params = [p for p in model.task_parameters() if p.requires_grad]
        # Set by the learner: the step's task losses [T] recomputed, and (for
        # `Method.needs_validation_batches`) those of a validation batch; each takes an optional
        # {name: tensor} of parameters/buffers to use instead of the model's (functional_call).
        self.recompute_losses: Callable[..., torch.Tensor] | None = None
        self.validation_losses: Callable[..., torch.Tensor] | None = None

    @property
    def n_tasks(self) -> int:
        return self.losses.numel()

    def parameter_jacobian(self, params: list[torch.Tensor]) -> torch.Tensor:
        """[T, D] gradients of each task loss w.r.t. `params` only (e.g. GradNorm's last shared layer).

        Backpropagation stops at `params`, so for a late layer this is far cheaper than
        `shared_jacobian`.
        """
        if self.task_representations is not None:
            # The losses reach the encoder through z only: chain rule dL_t/dp = (dL_t/dz)^T dz/dp.
            z = self._require_representation()
            grads = vjp_rows(z, list(params), self.feature_jacobian().view(self.n_tasks, *z.shape), self.jacobian)
        elif self.jacobian == "loop":
            return _loop_jacobian_matrix(self.losses, list(params))
        else:
            grads = jacobian_rows(self.losses, list(params), self.jacobian)
        return torch.cat([g.reshape(self.n_tasks, -1) for g in grads], dim=1)

    def shared_jacobian(self) -> torch.Tensor:
        """[T, D] gradients of each task loss w.r.t. the shared (encoder) parameters."""
        return self.parameter_jacobian(self.shared_params)

    def _require_representation(self) -> torch.Tensor:
        if self.representation is None:
            raise ConfigError(
                f"architecture {type(self.model).__name__} exposes no shared representation; "
                "MGDA-UB and GradDrop need one (use a parameter-gradient method such as mgda)"
            )
        return self.representation

    def feature_jacobian(self) -> torch.Tensor:
        """[T, B*F] gradients of each task loss w.r.t. the shared representation z.

        Only the heads are traversed, so this costs T small head backwards, not T encoder
        backwards: the point of MGDA-UB. Always one vmapped backward: through the small heads
        it beats the loop on CPU too (MGDA-UB step / linear step at T=40, LeNet: 3.2 vs 4.5).
        """
        if self._feature_grads is None:
            z = self._require_representation()
            if self.task_representations is not None:
                # Row t depends on head t only: one backward of sum_t L_t through the heads,
                # which also gives each head its own (unweighted) gradient when heads own
                # disjoint parameters (`_set_head_gradients` then only rescales them).
                groups = self.model.task_parameter_groups()
                own = [p for group in groups for p in group if p.requires_grad] if groups is not None else []
                grads = torch.autograd.grad(self.losses.sum(), list(self.task_representations) + own, retain_graph=True, allow_unused=True)
                self._feature_grads = torch.stack([torch.zeros_like(z) if g is None else g for g in grads[: self.n_tasks]]).reshape(self.n_tasks, -1)
                if groups is not None:
                    by_param = dict(zip(map(id, own), grads[self.n_tasks :]))
                    self._head_grads = [[(p, by_param.get(id(p))) for p in group if p.requires_grad] for group in groups]
            else:
                (grads,) = jacobian_rows(self.losses, [z], "batched")
                self._feature_grads = grads.reshape(self.n_tasks, -1)
        return self._feature_grads

    def backward_weighted(self, weights: torch.Tensor) -> None:
        """One backward pass of sum_t w_t L_t (weights treated as constants)."""
        if self.task_representations is not None:
            self.backward_features(weights.detach().to(self.losses) @ self.feature_jacobian(), head_weights=weights)
            return
        (weights.detach().to(self.losses) * self.losses).sum().backward()

    def _set_head_gradients(self, head_weights: torch.Tensor) -> None:
        if not self.task_params:  # heads may have no parameters (e.g. fixed objectives in tests)
            return
        if self._head_grads is not None:  # each head's own gradient is known: rescale it
            for w, group in zip(head_weights.detach().tolist(), self._head_grads):
                for p, g in group:
                    p.grad = torch.zeros_like(p) if g is None else g * w
            return
        head_loss = (head_weights.detach().to(self.losses) * self.losses).sum()
        head_grads = torch.autograd.grad(head_loss, self.task_params, retain_graph=True, allow_unused=True)
        for p, g in zip(self.task_params, head_grads):
            p.grad = torch.zeros_like(p) if g is None else g

    def set_shared_gradient(self, direction: torch.Tensor, head_weights: torch.Tensor) -> None:
        """Shared parameters get `direction` (flattened [D]); heads get grad of sum_t w_t L_t."""
        self._set_head_gradients(head_weights)
        offset = 0
        for p in self.shared_params:
            n = p.numel()
            p.grad = direction[offset : offset + n].view_as(p).to(p).clone()
            offset += n

    def backward_features(self, feature_grad: torch.Tensor, head_weights: torch.Tensor) -> None:
        """Heads get grad of sum_t w_t L_t; the encoder gets `feature_grad` (d/dz, e.g. [B*F])
        backpropagated from the representation in a single encoder backward pass."""
        self._set_head_gradients(head_weights)
        z = self._require_representation()
        z.backward(feature_grad.detach().to(z).view_as(z))


class Method:
    """Base class. Subclasses implement `backward` and may keep state across steps.

    sweep: "none" (one run per seed), "preferences" (one run per preference-grid point) or
    "tasks" (one run per task, e.g. single-task baselines).
    """

    sweep: ClassVar[str] = "none"
    label: ClassVar[str | None] = None  # name shown in tables and figures
    # True for methods that only need gradients w.r.t. the shared representation (MGDA-UB,
    # GradDrop): the learner then gives each head its own leaf copy of z (see StepContext).
    uses_representation: ClassVar[bool] = False
    # True for methods that read the batch's losses again after the optimiser step
    # (`after_step`, FAMO): the learner then evaluates the batch once more, without gradients.
    needs_losses_after_step: ClassVar[bool] = False
    # What the method trains: "network" (one MTL network) or "hypernetwork" (a preference-
    # conditioned generator of networks); the training loop builds the matching learner.
    learns: ClassVar[str] = "network"
    # True for methods that read validation losses during training (Auto-Lambda): the learner
    # then sets `StepContext.validation_losses` for one validation batch per step.
    needs_validation_batches: ClassVar[bool] = False

    def __init__(self, n_tasks: int, preference: tuple[float, ...] | None = None, task: int | None = None) -> None:
        self.n_tasks = n_tasks
        self.preference = preference
        self.task = task
        self.stats: dict[str, float] = {}  # per-epoch counters for the training log (`count`)

    def parameters(self) -> list[nn.Parameter]:
        """Extra trainable parameters (e.g. learned loss weights), added to the optimiser."""
        return []

    def backward(self, ctx: StepContext) -> torch.Tensor:
        """Set .grad of the model's parameters for this step; return the task weights used [T]."""
        raise NotImplementedError

    def after_step(self, losses: torch.Tensor) -> None:
        """With `needs_losses_after_step`: the batch's task losses [T] after the parameter step."""

    def start_epoch(self, epoch: int, lr: float) -> None:
        """Hook called before each epoch with the optimiser's learning rate (Auto-Lambda's virtual step)."""

    def end_epoch(self, epoch: int, mean_losses: torch.Tensor) -> None:
        """Hook called with the epoch's mean task losses (e.g. DWA's loss history)."""

    def count(self, key: str, value: float = 1.0) -> None:
        """Add to a counter the epoch log reports (divided by the epoch's steps)."""
        self.stats[key] = self.stats.get(key, 0.0) + value

    def pop_stats(self) -> dict[str, float]:
        stats, self.stats = self.stats, {}
        return stats

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


def seeded_generator(seed: int | None, method: str) -> torch.Generator:
    """CPU generator for a method's own randomness (task order, masks, random weights).

    seed None takes the run's seed: the trainer calls torch.manual_seed(run seed) before it
    builds the method, and torch.initial_seed() reads that back without consuming the global
    stream, so a run stays reproducible and independent of the method's draws.
    """
    if seed is None:
        seed = torch.initial_seed()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{method}: seed must be a non-negative integer or null, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def check_number(value: object, option: str, method: str, low: float | None = None, high: float | None = None, low_open: bool = False, integer: bool = False) -> float:
    """Validate a numeric option; the ConfigError names `method.option` and the allowed range."""
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = v == v and abs(v) != float("inf")  # finite
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(("> " if low_open else ">= ") + f"{low:g}")
        if high is not None:
            bounds.append(f"<= {high:g}")
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(f"{method}: option {option} must be {kind}{' ' + ' and '.join(bounds) if bounds else ''}, got {value!r}")
    return value  # type: ignore[return-value]
