"""What a training loop optimises and an evaluator scores: a dataset or a closed-form problem.

Both give mini-batches, the network's input for a batch, the per-task losses of the network's
outputs and per-split scores; the loop and the evaluator never ask which one they have.  A
dataset kind names its problem class (`DatasetKind.problem`, default `DatasetProblem`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch

from mtlpareto.data.store import prepare_inputs
from mtlpareto.errors import ConfigError
from mtlpareto.tasks import Task, index_targets, targets_to, task_targets

Forward = Callable[[torch.Tensor], list[torch.Tensor]]
EVAL_SPLITS = ("val", "test")


class Problem:
    tasks: list[Task]
    steps_per_epoch: int

    def batches(self, generator: torch.Generator) -> Iterator[Any]:
        """One epoch of mini-batches; `generator` draws the order (checkpointed with the run)."""
        raise NotImplementedError

    def inputs(self, batch: Any) -> torch.Tensor:
        raise NotImplementedError

    def losses(self, outputs: list[torch.Tensor], batch: Any) -> torch.Tensor:
        """Per-task training losses [T] of the network's outputs on `batch`."""
        raise NotImplementedError

    def validation_batch(self, index: int, seed: int) -> Any:
        """The index-th training-time validation batch (methods that learn from validation
        losses): a function of (index, seed) alone, so a resumed run draws the same ones."""
        raise ConfigError(f"{type(self).__name__} has no validation split to draw batches from during training")

    @property
    def splits(self) -> list[str]:
        """The splits `score` can evaluate."""
        raise NotImplementedError

    def score(self, forward: Forward, split: str) -> dict[str, dict[str, float | None]]:
        """{task: {metric: value}} of a network on `split` (no gradients)."""
        raise NotImplementedError

    def point_details(self, forward: Forward) -> dict:
        """Extra fields of a trade-off-curve point (the solution of a closed-form problem)."""
        return {}

    def curve_summary(self, losses: np.ndarray, details: list[dict], reference: list[float]) -> dict:
        """Extra metrics of a whole trade-off curve (distances to a known front)."""
        return {}


class DatasetProblem(Problem):
    """Mini-batches of a processed dataset; each task scores its own outputs."""

    def __init__(self, data: dict, tasks: list[Task], batch_size: int, device: torch.device | str = "cpu", memory_format: torch.memory_format = torch.contiguous_format) -> None:
        self.data = data
        self.tasks = tasks
        self.meta = data.get("meta", {})
        self.x, self.y = data["train"]
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.memory_format = memory_format
        self.steps_per_epoch = (self.x.shape[0] + batch_size - 1) // batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError("the training split is empty")

    def batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, Any]]:
        order = torch.randperm(self.x.shape[0], generator=generator)
        for step in range(self.steps_per_epoch):
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            x = prepare_inputs(self.x[idx], self.meta).to(self.device).contiguous(memory_format=self.memory_format)
            yield x, targets_to(index_targets(self.y, idx), self.device)

    def validation_batch(self, index: int, seed: int) -> tuple[torch.Tensor, Any]:
        """Batches of the validation split in a new random order each pass over it (the order of
        pass c drawn from seed and c)."""
        if "val" not in self.data or self.data["val"][0].shape[0] == 0:
            raise ConfigError("this method learns from validation batches during training, but the dataset's validation split is empty; set the dataset's val_size")
        x_val, y_val = self.data["val"]
        n = x_val.shape[0]
        per_pass = (n + self.batch_size - 1) // self.batch_size
        cycle, position = divmod(index, per_pass)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + cycle))
        idx = order[position * self.batch_size : (position + 1) * self.batch_size]
        x = prepare_inputs(x_val[idx], self.meta).to(self.device).contiguous(memory_format=self.memory_format)
        return x, targets_to(index_targets(y_val, idx), self.device)

    def inputs(self, batch: tuple[torch.Tensor, Any]) -> torch.Tensor:
        return batch[0]

    def losses(self, outputs: list[torch.Tensor], batch: tuple[torch.Tensor, Any]) -> torch.Tensor:
        targets = task_targets(batch[1], self.tasks)
        return torch.stack([task.loss(out, y) for task, out, y in zip(self.tasks, outputs, targets)])

    @property
    def splits(self) -> list[str]:
        return [s for s in EVAL_SPLITS if s in self.data and self.data[s][0].shape[0] > 0]

    @torch.no_grad()
    def score(self, forward: Forward, split: str, batch_size: int = 1024) -> dict[str, dict[str, float | None]]:
        x_all, y_all = self.data[split]
        meters = [task.meter() for task in self.tasks]
        for start in range(0, x_all.shape[0], batch_size):
            idx = torch.arange(start, min(start + batch_size, x_all.shape[0]))
            x = prepare_inputs(x_all[idx], self.meta).to(self.device)
            targets = task_targets(targets_to(index_targets(y_all, idx), self.device), self.tasks)
            for meter, out, y in zip(meters, forward(x), targets):
                meter.update(out, y)
        return {task.name: meter.compute() for task, meter in zip(self.tasks, meters)}


class ClosedFormProblem(Problem):
    """A problem with objectives in closed form (data/synthetic.py): the 'network' outputs x.

    Every head of the `decision_vector` model returns the decision vector x; the task losses
    are the problem's objectives at x.  An epoch is `steps_per_epoch` steps without data.
    """

    def __init__(self, data: dict, tasks: list[Task], batch_size: int = 1, device: torch.device | str = "cpu", memory_format: torch.memory_format = torch.contiguous_format) -> None:
        from mtlpareto.data.synthetic import make_problem

        info = data["meta"]["synthetic"]
        self.problem = make_problem(info["problem"], info["dim"])
        self.tasks = tasks
        self.steps_per_epoch = int(info["steps_per_epoch"])
        self.dummy = torch.zeros(1, self.problem.dim, device=device)

    def batches(self, generator: torch.Generator) -> Iterator[None]:
        return iter([None] * self.steps_per_epoch)

    def inputs(self, batch: None) -> torch.Tensor:
        return self.dummy

    def solution(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        return outputs[0][0]

    def losses(self, outputs: list[torch.Tensor], batch: None) -> torch.Tensor:
        return self.problem.objectives(self.solution(outputs))

    @property
    def splits(self) -> list[str]:
        return ["test"]

    @torch.no_grad()
    def score(self, forward: Forward, split: str) -> dict[str, dict[str, float | None]]:
        f = self.problem.objectives(self.solution(forward(self.dummy)).double())
        return {task.name: {"loss": round(float(v), 8)} for task, v in zip(self.tasks, f)}

    @torch.no_grad()
    def point_details(self, forward: Forward) -> dict:
        x = self.solution(forward(self.dummy)).double()
        return {"solution": [round(float(v), 8) for v in x]}

    def curve_summary(self, losses: np.ndarray, details: list[dict], reference: list[float]) -> dict:
        p = self.problem
        solutions = np.array([d["solution"] for d in details])
        to_set, to_front = p.distance_to_pareto_set(solutions), p.distance_to_front(losses)
        return {
            "true_front": {"problem": p.name, "dim": p.dim, "hypervolume": p.front_hypervolume(tuple(reference))},
            "distance_to_pareto_set": {"mean": float(to_set.mean()), "max": float(to_set.max())},
            "distance_to_front": {"mean": float(to_front.mean()), "max": float(to_front.max())},
            "front_coverage": p.front_coverage(losses),
        }


def make_problem(kind: Any, data: dict, tasks: list[Task], batch_size: int, device: torch.device | str = "cpu", memory_format: torch.memory_format = torch.contiguous_format) -> Problem:
    """The problem class a dataset kind names (default: a dataset of samples)."""
    cls = getattr(kind, "problem", DatasetProblem)
    return cls(data, tasks, batch_size, device, memory_format)
