"""The "controllable" trainer: one hypernetwork learns every trade-off (Lin et al. 2020, Alg. 1).

Each step samples preferences from the method (Dirichlet), generates one target network per
preference, computes the task losses on the same mini-batch, and lets the method turn them
into an update of the hypernetwork's parameters.  Like training/trainer.py, every epoch ends
with an atomic resume checkpoint (hypernetwork, optimiser, scheduler, method state with its
preference RNG, all RNG states) and a killed run resumes to the same weights.

Evaluation sweeps a dense preference grid: per split and preference the task losses and
accuracies (the trade-off curve), the hypervolume of the curve's losses, and "splits" at the
uniform preference.  Datasets without samples (kind `synthetic`) are closed-form problems:
the target is the decision vector and the losses are its objectives.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mtlpareto.controllable.base import ControllableMethod, ControllableStepContext
from mtlpareto.data import TaskSpec, input_shape, task_specs
from mtlpareto.data.store import load_processed, prepare_inputs
from mtlpareto.errors import ConfigError, TrainingError
from mtlpareto.methods import build_method
from mtlpareto.models import build_model
from mtlpareto.models.hypernet import ControllableModel, FunctionalTarget, HyperNetwork
from mtlpareto.training import TRAINERS
from mtlpareto.training.run_state import CHECKPOINT_FORMAT, RunFiles, epoch_record, make_optimizer, resolve_device, start_run

KIND = "controllable"
IGNORE_INDEX = -100  # label of a sample that does not belong to a task (CIFAR-100/20)
FOCUS = 0.5  # with T > 2 tasks, task t is evaluated at (1 - FOCUS) * uniform + FOCUS * e_t


# --------------------------------------------------------------------------- losses


def masked_task_losses(outputs: list[torch.Tensor], targets: torch.Tensor, tasks: list[TaskSpec]) -> torch.Tensor:
    """Per-task losses [T]; samples labelled IGNORE_INDEX for a task do not count for it.

    A task with no sample in the batch gets loss 0 (and a zero gradient) rather than NaN.
    """
    losses = []
    for t, (out, task) in enumerate(zip(outputs, tasks)):
        y = targets[:, t]
        if task.loss == "cross_entropy":
            count = (y != IGNORE_INDEX).sum().clamp_min(1)
            losses.append(F.cross_entropy(out, y, ignore_index=IGNORE_INDEX, reduction="sum") / count)
        elif task.loss == "mse":
            losses.append(F.mse_loss(out.squeeze(-1), y.to(out)))
        else:
            raise ConfigError(f"task {task.name!r}: loss {task.loss!r} is not supported by the controllable trainer")
    return torch.stack(losses)


# --------------------------------------------------------------------------- model construction


def _target_architecture(spec: dict, data: dict) -> dict:
    tasks = task_specs(spec["dataset"])
    return {
        "name": spec["model"]["name"],
        "options": {k: v for k, v in spec["model"].items() if k != "name"},
        "task_outputs": [t.n_classes for t in tasks],
        "input_shape": list(input_shape(data)),
    }


def build_controllable(architecture: dict, hypernet_options: dict, tasks: list[TaskSpec], meta: dict) -> ControllableModel:
    """Target (meta device, no parameters) + hypernetwork, from a checkpoint's architecture."""
    arch = architecture
    target = FunctionalTarget(lambda: build_model(arch["name"], arch["task_outputs"], tuple(arch["input_shape"]), **arch["options"]))
    hypernet = HyperNetwork(len(tasks), target.shapes, target.init_std, **hypernet_options)
    return ControllableModel(target, hypernet, tasks=tasks, meta=meta)


def _synthetic_problem(meta: dict):
    from mtlpareto.controllable.synthetic import make_problem

    info = meta["synthetic"]
    return make_problem(info["problem"], info["dim"])


class _DataProblem:
    """Mini-batches of a processed dataset; losses of the generated network on them."""

    def __init__(self, data: dict, tasks: list[TaskSpec], batch_size: int, device: torch.device) -> None:
        self.x, self.y = data["train"]
        self.meta = data.get("meta", {})
        self.tasks = tasks
        self.batch_size = batch_size
        self.device = device
        self.steps_per_epoch = (self.x.shape[0] + batch_size - 1) // batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError("the training split is empty")

    def batches(self, generator: torch.Generator) -> Iterator:
        order = torch.randperm(self.x.shape[0], generator=generator)
        for step in range(self.steps_per_epoch):
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield prepare_inputs(self.x[idx], self.meta).to(self.device), self.y[idx].to(self.device)

    def losses(self, model: ControllableModel, params: dict, batch) -> torch.Tensor:
        x, y = batch
        return masked_task_losses(model.forward_with(params, x), y, self.tasks)


class _SyntheticProblem:
    """A closed-form problem: the generated 'network' is the decision vector x."""

    def __init__(self, meta: dict, device: torch.device) -> None:
        self.problem = _synthetic_problem(meta)
        self.steps_per_epoch = int(meta["synthetic"]["steps_per_epoch"])
        self.dummy = torch.zeros(1, self.problem.dim, device=device)

    def batches(self, generator: torch.Generator) -> Iterator:
        return iter([None] * self.steps_per_epoch)

    def losses(self, model: ControllableModel, params: dict, batch) -> torch.Tensor:
        x = model.forward_with(params, self.dummy)[0][0]  # every head of decision_vector returns x
        return self.problem.objectives(x)


# --------------------------------------------------------------------------- training


def train_controllable(
    spec: dict,
    dataset_path: Path,
    checkpoint_path: Path,
    log_path: Path,
    threads: int = 1,
    progress: bool = True,
) -> dict:
    """Train the hypernetwork of one run (Profile.run_spec) and write its final checkpoint."""
    device = start_run(spec, threads)
    data = load_processed(dataset_path)
    tasks = task_specs(spec["dataset"])
    train = spec["train"]
    meta = data.get("meta", {})
    method = build_method(spec["method"], len(tasks))
    if not isinstance(method, ControllableMethod):
        raise ConfigError(f"method {spec['method']['name']!r} is not a controllable method")

    architecture = _target_architecture(spec, data)
    model = build_controllable(architecture, method.hypernet, tasks, meta).to(device)
    problem = _SyntheticProblem(meta, device) if "synthetic" in meta else _DataProblem(data, tasks, train["batch_size"], device)
    params = list(model.hypernet.parameters())
    optimizer, scheduler = make_optimizer(params, train)
    loader_rng = torch.Generator().manual_seed(spec["seed"])

    files = RunFiles(spec, checkpoint_path, log_path, loader_rng)
    start_epoch = 0
    state = files.resume(device)
    if state is not None:
        model.hypernet.load_state_dict(state["hypernet"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        method.load_state_dict(state["method"])
        start_epoch = state["epoch"]

    steps = problem.steps_per_epoch
    n_params = {"hypernetwork": model.hypernet_parameters, "target": model.target_parameters}
    bar = tqdm(total=train["epochs"] * steps, initial=start_epoch * steps, desc=spec["run"], disable=not progress, leave=False, mininterval=1.0)
    model.train()
    for epoch in range(start_epoch, train["epochs"]):
        started = time.perf_counter()
        loss_sum = torch.zeros(len(tasks), dtype=torch.float64)
        weight_sum = torch.zeros(len(tasks), dtype=torch.float64)
        for step, batch in enumerate(problem.batches(loader_rng)):
            preferences = method.sample_preferences()
            losses = torch.stack([problem.losses(model, model.generate(p), batch) for p in preferences])
            if not torch.isfinite(losses).all():
                bad = losses.detach().cpu().tolist()
                raise TrainingError(f"run {spec['run']}: non-finite loss at epoch {epoch + 1}, step {step + 1}: {bad}; lower the learning rate or check the data")
            optimizer.zero_grad(set_to_none=True)
            ctx = ControllableStepContext(losses, preferences, params, step=epoch * steps + step, epoch=epoch)
            weights = method.backward(ctx)
            optimizer.step()
            loss_sum += losses.detach().double().cpu().mean(0)
            weight_sum += weights.detach().double().cpu().sum(0)
            bar.update(1)
        mean_losses = (loss_sum / steps).float()
        method.end_epoch(epoch, mean_losses)
        stats = method.pop_stats()
        extra = {"method_stats": {k: round(v / steps, 4) for k, v in sorted(stats.items())}} if stats else {}
        record = epoch_record(epoch + 1, optimizer.param_groups[0]["lr"], [t.name for t in tasks], mean_losses, weight_sum / steps, time.perf_counter() - started, **extra)
        bar.set_postfix({t.name: f"{float(v):.3f}" for t, v in zip(tasks, mean_losses)})
        if scheduler is not None:
            scheduler.step()
        files.end_epoch(
            record,
            lambda: {
                "kind": KIND,
                "hypernet": model.hypernet.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "method": method.state_dict(),
            },
        )
    bar.close()
    final = {
        "format": CHECKPOINT_FORMAT,
        "kind": KIND,
        "spec": spec,
        "epochs": train["epochs"],
        "architecture": {"target": architecture, "hypernet": dict(method.hypernet)},
        "tasks": [asdict(t) for t in tasks],
        "meta": meta,
        "parameters": n_params,
        "hypernet": {k: v.detach().cpu() for k, v in model.hypernet.state_dict().items()},
    }
    files.finish(final)
    return {"run": spec["run"], "epochs": train["epochs"], "parameters": n_params}


# --------------------------------------------------------------------------- loading


def read_checkpoint(checkpoint_path: Path) -> dict:
    path = Path(checkpoint_path)
    if not path.exists():
        raise ConfigError(f"checkpoint {path} not found; train the run first (snakemake or `mtlpareto train`)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("kind") != KIND:
        raise ConfigError(f"{path} is not a controllable (hypernetwork) checkpoint; `predict` needs a run of ctrl_linear, ctrl_pareto, phn_ls or phn_epo")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path}: checkpoint format {state.get('format')} is not {CHECKPOINT_FORMAT}; retrain the run")
    return state


def load_controllable(checkpoint_path: Path, device: str = "cpu") -> ControllableModel:
    """The trained model of a controllable checkpoint, in eval mode, on `device`.

    `model.set_preference(p)` then `model(model.prepare_inputs(x))`; `model.tasks` lists the
    TaskSpecs, `model.spec` the run's settings.
    """
    state = read_checkpoint(checkpoint_path)
    tasks = [TaskSpec(**t) for t in state["tasks"]]
    # Building the hypernetwork draws initial weights; keep the caller's RNG stream intact.
    with torch.random.fork_rng(devices=[]):
        model = build_controllable(state["architecture"]["target"], state["architecture"]["hypernet"], tasks, state["meta"])
    model.hypernet.load_state_dict(state["hypernet"])
    model.spec = state["spec"]
    model.prepare_inputs = lambda x: prepare_inputs(x, model.meta)  # type: ignore[method-assign]
    return model.to(resolve_device(device)).eval()


# --------------------------------------------------------------------------- evaluation


def evaluation_preferences(n_tasks: int, points: int) -> list[torch.Tensor]:
    """The dense preference grid of the trade-off curve.

    Two tasks: `points` evenly spaced preferences (p_1 from 0 to 1).  More tasks: the uniform
    preference and, per task t, (1 - FOCUS) * uniform + FOCUS * e_t (a dense grid of a
    high-dimensional simplex is out of reach; this is the paper's per-task "real-time
    preference adjustment" of the CIFAR-100/20 experiment).
    """
    if n_tasks == 2:
        return [torch.tensor([s, 1.0 - s]) for s in np.linspace(0.0, 1.0, points)]
    uniform = torch.full((n_tasks,), 1.0 / n_tasks)
    return [uniform] + [(1 - FOCUS) * uniform + FOCUS * torch.eye(n_tasks)[t] for t in range(n_tasks)]


@torch.no_grad()
def evaluate_split(model: ControllableModel, data: dict, split: str, batch_size: int = 1024) -> dict:
    """{task: {"accuracy": %, "loss": mean}} of the model at its current preference."""
    tasks: list[TaskSpec] = model.tasks
    x_all, y_all = data[split]
    meta = data.get("meta", {})
    device = model.hypernet.scale.device
    loss_sum = torch.zeros(len(tasks), dtype=torch.float64)
    correct = torch.zeros(len(tasks), dtype=torch.float64)
    count = torch.zeros(len(tasks), dtype=torch.float64)
    for start in range(0, x_all.shape[0], batch_size):
        x = prepare_inputs(x_all[start : start + batch_size], meta).to(device)
        y = y_all[start : start + batch_size].to(device)
        outputs = model(x)
        for t, (out, task) in enumerate(zip(outputs, tasks)):
            target = y[:, t]
            if task.loss == "cross_entropy":
                valid = target != IGNORE_INDEX
                loss_sum[t] += float(F.cross_entropy(out, target, ignore_index=IGNORE_INDEX, reduction="sum"))
                correct[t] += float((out.argmax(1)[valid] == target[valid]).sum())
                count[t] += float(valid.sum())
            else:
                loss_sum[t] += float(F.mse_loss(out.squeeze(-1), target.to(out), reduction="sum"))
                count[t] += target.shape[0]
    result = {}
    for t, task in enumerate(tasks):
        n = float(count[t])
        # A task without a labelled sample in the split has no score (None), not 0.
        entry = {"loss": round(float(loss_sum[t]) / n, 6) if n else None}
        if task.loss == "cross_entropy":
            entry = {"accuracy": round(100.0 * float(correct[t]) / n, 4) if n else None, **entry}
        result[task.name] = entry
    return result


def _splits(data: dict) -> list[str]:
    return [s for s in ("val", "test") if s in data and data[s][0].shape[0] > 0]


def _curve_hypervolume(points: list[list[float]], reference: list[float]) -> float | None:
    from mtlpareto.metrics.hypervolume import hypervolume

    if len(reference) > 3 or any(v is None for p in points for v in p):
        return None  # exact hypervolume in many dimensions is exponential; a task without samples has no loss
    return hypervolume(np.asarray(points), np.asarray(reference))


def _evaluate_synthetic(model: ControllableModel, method: ControllableMethod) -> dict:
    problem = _synthetic_problem(model.meta)
    curve = []
    for p in evaluation_preferences(2, method.eval_points):
        model.set_preference(p)
        x = model.forward(torch.zeros(1, problem.dim, device=model.hypernet.scale.device))[0][0].double()
        f = problem.objectives(x)
        curve.append({
            "preference": [round(float(v), 6) for v in p],
            "losses": {t.name: round(float(v), 8) for t, v in zip(model.tasks, f)},
            "solution": [round(float(v), 8) for v in x],
        })
    losses = np.array([[c["losses"][t.name] for t in model.tasks] for c in curve])
    solutions = np.array([c["solution"] for c in curve])
    model.set_preference(torch.full((2,), 0.5))
    x = model.forward(torch.zeros(1, problem.dim, device=model.hypernet.scale.device))[0][0].double()
    at_uniform = problem.objectives(x)
    reference = method.hv_reference
    return {
        "splits": {"test": {t.name: {"loss": round(float(v), 8)} for t, v in zip(model.tasks, at_uniform)}},
        "curve": {"test": curve},
        "hypervolume": {"reference": reference, "test": _curve_hypervolume(losses.tolist(), reference)},
        "true_front": {"problem": problem.name, "dim": problem.dim, "hypervolume": problem.front_hypervolume(tuple(reference))},
        "distance_to_pareto_set": {"mean": float(problem.distance_to_pareto_set(solutions).mean()), "max": float(problem.distance_to_pareto_set(solutions).max())},
        "distance_to_front": {"mean": float(problem.distance_to_front(losses).mean()), "max": float(problem.distance_to_front(losses).max())},
        "front_coverage": problem.front_coverage(losses),
    }


def evaluate_controllable(spec: dict, data: dict, checkpoint_path: Path) -> dict:
    """Metrics of a trained controllable run: trade-off curve, hypervolume, uniform-preference splits."""
    state = read_checkpoint(checkpoint_path)
    # The run's device when it has one (the paper profile evaluates 21-51 preferences per split).
    device = spec["device"] if spec["device"] != "cuda" or torch.cuda.is_available() else "cpu"
    model = load_controllable(checkpoint_path, device=device)
    method = build_method(spec["method"], len(model.tasks))
    record = {"parameters": state["parameters"]}
    if "synthetic" in model.meta:
        return {**record, **_evaluate_synthetic(model, method)}
    splits = _splits(data)
    prefs = evaluation_preferences(len(model.tasks), method.eval_points)
    curve: dict[str, list] = {s: [] for s in splits}
    for p in prefs:
        model.set_preference(p)
        for split in splits:
            result = evaluate_split(model, data, split)
            curve[split].append({
                "preference": [round(float(v), 6) for v in p],
                "losses": {k: v["loss"] for k, v in result.items()},
                "accuracies": {k: v["accuracy"] for k, v in result.items() if "accuracy" in v},
            })
    reference = method.hv_reference
    hv = {"reference": reference}
    for split in splits:
        points = [[c["losses"][t.name] for t in model.tasks] for c in curve[split]]
        hv[split] = _curve_hypervolume(points, reference)
    model.set_preference(torch.full((len(model.tasks),), 1.0 / len(model.tasks)))
    record.update({"splits": {s: evaluate_split(model, data, s) for s in splits}, "curve": curve, "hypervolume": hv})
    if len(model.tasks) > 2:
        # Per task, its score at the preference focused on it (App. D, CIFAR-100/20).
        record["focused"] = {
            s: {t.name: {"accuracy": curve[s][i + 1]["accuracies"].get(t.name), "loss": curve[s][i + 1]["losses"][t.name]} for i, t in enumerate(model.tasks)}
            for s in splits
        }
    return record


def predict(model: ControllableModel, data: dict, split: str, preference: torch.Tensor | list[float]) -> dict:
    """Scores of `model` on one split at `preference` (validated, normalised); for `predict`."""
    p = model.set_preference(preference)
    out: dict = {"preference": [round(float(v), 6) for v in p]}
    if "synthetic" in model.meta:
        problem = _synthetic_problem(model.meta)
        x = model.forward(torch.zeros(1, problem.dim, device=model.hypernet.scale.device))[0][0].double()
        out["losses"] = {t.name: float(v) for t, v in zip(model.tasks, problem.objectives(x))}
        out["solution"] = [float(v) for v in x]
        return out
    available = _splits(data)
    if split not in available:
        raise ConfigError(f"split {split!r} is not in the dataset; available: {', '.join(available) or 'none'}")
    out["metrics"] = evaluate_split(model, data, split)
    return out


@torch.no_grad()
def predictions_csv(model: ControllableModel, data: dict, split: str, batch_size: int = 1024) -> str:
    """Predicted class per task and sample at the model's current preference, as CSV text."""
    x_all, y_all = data[split]
    meta = data.get("meta", {})
    device = model.hypernet.scale.device
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index"] + [f"{t.name}_{c}" for t in model.tasks for c in ("pred", "true")])
    for start in range(0, x_all.shape[0], batch_size):
        outputs = model(prepare_inputs(x_all[start : start + batch_size], meta).to(device))
        preds = torch.stack([o.argmax(1).cpu() for o in outputs], dim=1)
        truth = y_all[start : start + batch_size]
        for i in range(preds.shape[0]):
            writer.writerow([start + i] + [int(v) for t in range(len(model.tasks)) for v in (preds[i, t], truth[i, t])])
    return buffer.getvalue()


class ControllableTrainer:
    """Hypernetwork methods (ctrl_linear, ctrl_pareto, phn_ls, phn_epo); see this module."""

    def train(self, spec, dataset_path, checkpoint_path, log_path, threads=1, progress=True) -> dict:
        return train_controllable(spec, Path(dataset_path), Path(checkpoint_path), Path(log_path), threads=threads, progress=progress)

    def evaluate(self, spec, data, checkpoint_path) -> dict:
        return evaluate_controllable(spec, data, Path(checkpoint_path))


TRAINERS.register("controllable")(ControllableTrainer())

__all__ = ["ControllableTrainer", "build_controllable", "evaluate_controllable", "load_controllable", "masked_task_losses", "predict", "train_controllable"]

