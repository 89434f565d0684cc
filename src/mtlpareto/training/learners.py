"""What a method trains: one MTL network, or a hypernetwork that generates one per preference.

The training loop (loop.py) and the evaluator (evaluate.py) talk to a learner only through
this interface; a method names its learner with `Method.learns`.  Each learner knows how to
take a step (losses of the batch, then the method's update), what its resume state and final
checkpoint hold, how to load itself back, and how to score itself on a problem.
"""

from __future__ import annotations

from typing import Any

import torch

from mtlpareto.data.problems import Problem
from mtlpareto.errors import ConfigError, TrainingError
from mtlpareto.methods import Method, StepContext
from mtlpareto.methods.controllable import ControllableMethod, ControllableStepContext
from mtlpareto.models import MTLModel, build_model
from mtlpareto.models.hypernet import ControllableModel, FunctionalTarget, HyperNetwork
from mtlpareto.registry import Registry
from mtlpareto.tasks import Task

CHECKPOINT_KIND_HYPERNETWORK = "controllable"  # the "kind" field of hypernetwork checkpoints


def model_architecture(spec: dict, tasks: list[Task], input_shape: tuple[int, ...]) -> dict:
    """Everything `build_from_architecture` needs to rebuild the run's network (stored in checkpoints)."""
    return {
        "name": spec["model"]["name"],
        "options": {k: v for k, v in spec["model"].items() if k != "name"},
        "task_outputs": [t.out_channels for t in tasks],
        "input_shape": list(input_shape),
    }


def build_from_architecture(arch: dict) -> MTLModel:
    return build_model(arch["name"], arch["task_outputs"], tuple(arch["input_shape"]), **arch["options"])


def check_finite(losses: torch.Tensor, run: str, epoch: int, step: int, tasks: list[Task]) -> None:
    if not bool(torch.isfinite(losses).all()):
        values = losses.detach().cpu()
        bad = {t.name: float(v) for t, v in zip(tasks, values)} if values.dim() == 1 else values.tolist()
        raise TrainingError(f"run {run}: non-finite loss at epoch {epoch + 1}, step {step + 1}: {bad}; lower the learning rate or check the data")


class Learner:
    """The trainable thing of a run; see the module docstring."""

    model: torch.nn.Module

    def parameters(self) -> list[torch.nn.Parameter]:
        raise NotImplementedError

    def step(self, problem: Problem, batch: Any, method: Method, step: int, epoch: int, jacobian: str, run: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One update's gradients (set by the method); returns (task losses [T], task weights [T]) to log."""
        raise NotImplementedError

    @torch.no_grad()
    def batch_losses(self, problem: Problem, batch: Any) -> torch.Tensor:
        """The batch's task losses with the current parameters (for `Method.after_step`)."""
        raise NotImplementedError

    def training_state(self) -> dict:
        raise NotImplementedError

    def load_training_state(self, state: dict) -> None:
        raise NotImplementedError

    def final_checkpoint(self, spec: dict, epochs: int, checkpoint_format: int) -> dict:
        raise NotImplementedError

    def end_epoch(self, epoch: int, epochs: int) -> dict:
        """After each epoch (0-based): what the learner adds to the epoch log (none by default)."""
        return {}


class NetworkLearner(Learner):
    """One MTL network (any architecture) updated by a weighting method."""

    def __init__(self, spec: dict, tasks: list[Task], input_shape: tuple[int, ...], method: Method, device: torch.device, memory_format: torch.memory_format, meta: dict | None = None) -> None:
        self.tasks = tasks
        self.model = build_from_architecture(model_architecture(spec, tasks, input_shape)).to(device, memory_format=memory_format)
        self.method = method
        self.seed = spec["seed"]

    def parameters(self) -> list[dict]:
        """Parameter groups: the architecture's (MPPS gives its masks their own lr), the method's."""
        groups = self.model.parameter_groups()
        extra = self.method.parameters()
        return groups + [{"params": extra}] if extra else groups

    def step(self, problem, batch, method, step, epoch, jacobian, run):
        x = problem.inputs(batch)
        outputs, representation, copies = self.model.forward_for_step(x, method.uses_representation)
        losses = problem.losses(outputs, batch)
        check_finite(losses, run, epoch, step, self.tasks)
        private = self.model.private_gradients(losses)
        ctx = StepContext(self.model, losses, representation, step=step, epoch=epoch, jacobian=jacobian, task_representations=copies)
        # Methods that re-evaluate the step's losses at other parameters (Auto-Lambda's virtual step).
        ctx.recompute_losses = self._batch_losses_at(problem, batch)
        if method.needs_validation_batches:
            ctx.validation_losses = self._batch_losses_at(problem, problem.validation_batch(step, self.seed))
        weights = method.backward(ctx)
        for p, g in private:  # after the method: its backward may have accumulated into them
            p.grad = g
        return losses.detach().cpu(), weights.detach().cpu().float()

    def end_epoch(self, epoch: int, epochs: int) -> dict:
        return self.model.end_epoch(epoch, epochs)

    def _batch_losses_at(self, problem: Problem, batch: Any):
        """losses(values=None): the batch's task losses [T], with `values` (name -> tensor)
        substituted for the model's parameters and buffers when given."""

        def losses(values: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
            x = problem.inputs(batch)
            outputs = self.model(x) if values is None else torch.func.functional_call(self.model, values, (x,), strict=False)
            return problem.losses(outputs, batch)

        return losses

    @torch.no_grad()
    def batch_losses(self, problem, batch):
        return problem.losses(self.model(problem.inputs(batch)), batch)

    def training_state(self) -> dict:
        return {"model": self.model.state_dict()}

    def load_training_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])

    def final_checkpoint(self, spec: dict, epochs: int, checkpoint_format: int) -> dict:
        return {"format": checkpoint_format, "spec": spec, "epochs": epochs, "model": {k: v.cpu() for k, v in self.model.state_dict().items()}}

    @staticmethod
    def load(state: dict, tasks: list[Task], input_shape: tuple[int, ...], device: str | torch.device = "cpu") -> MTLModel:
        model = build_from_architecture(model_architecture(state["spec"], tasks, input_shape))
        model.load_state_dict(state["model"])
        return model.to(device).eval()


def build_controllable(architecture: dict, hypernet_options: dict, tasks: list[Task], meta: dict) -> ControllableModel:
    """Target (meta device, no parameters) + hypernetwork, from a checkpoint's architecture."""
    target = FunctionalTarget(lambda: build_from_architecture(architecture))
    hypernet = HyperNetwork(len(tasks), target.shapes, target.init_std, **hypernet_options)
    return ControllableModel(target, hypernet, tasks=tasks, meta=meta)


class HyperNetworkLearner(Learner):
    """A hypernetwork; each step generates one network per sampled preference (Lin et al. Alg. 1)."""

    def __init__(self, spec: dict, tasks: list[Task], input_shape: tuple[int, ...], method: Method, device: torch.device, memory_format: torch.memory_format, meta: dict | None = None) -> None:
        if not isinstance(method, ControllableMethod):
            raise ConfigError(f"method {spec['method']['name']!r} does not train a hypernetwork")
        self.tasks = tasks
        self.meta = dict(meta or {})
        self.architecture = model_architecture(spec, tasks, input_shape)
        self.hypernet_options = dict(method.hypernet)
        self.model = build_controllable(self.architecture, self.hypernet_options, tasks, self.meta).to(device)
        self.params = list(self.model.hypernet.parameters())

    def parameters(self) -> list[torch.nn.Parameter]:
        return self.params

    def step(self, problem, batch, method, step, epoch, jacobian, run):
        preferences = method.sample_preferences()
        x = problem.inputs(batch)
        losses = torch.stack([problem.losses(self.model.forward_with(self.model.generate(p), x), batch) for p in preferences])
        check_finite(losses, run, epoch, step, self.tasks)
        weights = method.backward(ControllableStepContext(losses, preferences, self.params, step=step, epoch=epoch))
        return losses.detach().cpu().mean(0), weights.detach().cpu().float().sum(0)

    def training_state(self) -> dict:
        return {"kind": CHECKPOINT_KIND_HYPERNETWORK, "hypernet": self.model.hypernet.state_dict()}

    def load_training_state(self, state: dict) -> None:
        self.model.hypernet.load_state_dict(state["hypernet"])

    def final_checkpoint(self, spec: dict, epochs: int, checkpoint_format: int) -> dict:
        return {
            "format": checkpoint_format,
            "kind": CHECKPOINT_KIND_HYPERNETWORK,
            "spec": spec,
            "epochs": epochs,
            "architecture": {"target": self.architecture, "hypernet": self.hypernet_options},
            "tasks": [t.config() for t in self.tasks],
            "meta": self.meta,
            "parameters": {"hypernetwork": self.model.hypernet_parameters, "target": self.model.target_parameters},
            "hypernet": {k: v.detach().cpu() for k, v in self.model.hypernet.state_dict().items()},
        }


LEARNERS: Registry[type[Learner]] = Registry("learner")
LEARNERS.register("network")(NetworkLearner)
LEARNERS.register("hypernetwork")(HyperNetworkLearner)
from mtlpareto.training import dymu  # noqa: E402,F401  (registers the "dymu" learner)
