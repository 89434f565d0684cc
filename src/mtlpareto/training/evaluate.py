"""The one evaluator: scores of a trained run on its problem's splits.

A network is scored once per split.  A hypernetwork is scored along a dense preference grid
(the trade-off curve, per split), with the hypervolume of the curve's losses, the scores at
the uniform preference ("splits", what tables read) and, with more than two tasks, each
task's score at the preference focused on it.  What is task-specific comes from the tasks;
what is problem-specific (a closed-form problem's distance to its known front) from the
problem.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from mtlpareto.data import DATASETS, input_shape
from mtlpareto.data.problems import Problem, make_problem
from mtlpareto.data.store import prepare_inputs
from mtlpareto.errors import ConfigError
from mtlpareto.io import load_torch_file
from mtlpareto.methods import METHODS, build_method
from mtlpareto.models.hypernet import ControllableModel
from mtlpareto.tasks import Task, build_task
from mtlpareto.tasks.classification import ClassificationTask
from mtlpareto.training.learners import CHECKPOINT_KIND_HYPERNETWORK, NetworkLearner, build_controllable
from mtlpareto.training.dymu import evaluate_dymu
from mtlpareto.training.run_state import CHECKPOINT_FORMAT, resolve_device

FOCUS = 0.5  # with T > 2 tasks, task t is evaluated at (1 - FOCUS) * uniform + FOCUS * e_t
RETRAIN = "retrain the run (snakemake or `mtlpareto train`)"


def read_checkpoint(checkpoint_path: Path) -> dict:
    """A final checkpoint of this checkpoint format; errors name the file and the fix."""
    state = load_torch_file(Path(checkpoint_path), "checkpoint", RETRAIN)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ConfigError(f"{checkpoint_path}: checkpoint format {found} is not {CHECKPOINT_FORMAT}; {RETRAIN}")
    return state


def task_directions(tasks: list[Task]) -> dict[str, dict]:
    """Per task its type, primary metric and each metric's direction: written into metrics.json
    so tables and model selection read directions from the tasks, not from assumptions."""
    return {t.name: {"type": t.type_name, "order": i, "primary": t.primary, "higher_is_better": dict(t.metrics)} for i, t in enumerate(tasks)}


def problem_for(spec: dict, data: dict, tasks: list[Task], device: torch.device | str = "cpu") -> Problem:
    return make_problem(DATASETS.get(spec["dataset"]["kind"]), data, tasks, spec["train"]["batch_size"], device)


# --------------------------------------------------------------------------- hypernetworks


def load_controllable(checkpoint_path: Path, device: str = "cpu") -> ControllableModel:
    """The trained model of a hypernetwork checkpoint, in eval mode, on `device`.

    `model.set_preference(p)` then `model(model.prepare_inputs(x))`; `model.tasks` lists the
    tasks, `model.spec` the run's settings.
    """
    return controllable_from_state(read_checkpoint(checkpoint_path), checkpoint_path, device)


def controllable_from_state(state: dict, checkpoint_path: Path, device: str = "cpu") -> ControllableModel:
    """The model of a read hypernetwork checkpoint (see `load_controllable`)."""
    if state.get("kind") != CHECKPOINT_KIND_HYPERNETWORK:
        names = ", ".join(n for n in METHODS.names() if METHODS.get(n).learns == "hypernetwork")
        raise ConfigError(f"{checkpoint_path} is not a controllable (hypernetwork) checkpoint; `predict` needs a run of {names}")
    tasks = [build_task(t) for t in state["tasks"]]
    # Building the hypernetwork draws initial weights; keep the caller's RNG stream intact.
    with torch.random.fork_rng(devices=[]):
        model = build_controllable(state["architecture"]["target"], state["architecture"]["hypernet"], tasks, state["meta"])
    model.hypernet.load_state_dict(state["hypernet"])
    model.spec = state["spec"]
    model.prepare_inputs = lambda x: prepare_inputs(x, model.meta)  # type: ignore[method-assign]
    return model.to(resolve_device(device)).eval()


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


def curve_hypervolume(points: list[list[float | None]], reference: list[float]) -> float | None:
    """Hypervolume of a curve's loss vectors; None (with the reason in `hypervolume_note`) when undefined."""
    from mtlpareto.metrics.hypervolume import hypervolume

    if hypervolume_note(points, reference) is not None:
        return None
    return hypervolume(np.asarray(points), np.asarray(reference))


def hypervolume_note(points: list[list[float | None]], reference: list[float]) -> str | None:
    """Why a curve has no hypervolume, or None when it has one."""
    if len(reference) > 3:
        return f"not computed: the exact hypervolume of {len(reference)} objectives is exponential in their number"
    if any(v is None for p in points for v in p):
        return "not computed: a task has no labelled sample in the split, so no loss"
    return None


def _curve_point(model: ControllableModel, problem: Problem, split: str, preference: torch.Tensor) -> dict:
    scores = problem.score(model, split)
    point = {"preference": [round(float(v), 6) for v in preference], "losses": {k: v["loss"] for k, v in scores.items()}}
    if any("accuracy" in v for v in scores.values()):
        point["accuracies"] = {k: v["accuracy"] for k, v in scores.items() if "accuracy" in v}
    return {**point, **problem.point_details(model)}


def evaluate_hypernetwork(spec: dict, data: dict, checkpoint_path: Path) -> dict:
    """Metrics of a trained hypernetwork run: trade-off curve, hypervolume, uniform-preference splits."""
    state = read_checkpoint(checkpoint_path)
    model = controllable_from_state(state, checkpoint_path, device=spec["device"])
    tasks = model.tasks
    method = build_method(spec["method"], len(tasks))
    problem = problem_for(spec, {**data, "meta": model.meta}, tasks, model.hypernet.scale.device)
    splits = problem.splits
    curve: dict[str, list] = {s: [] for s in splits}
    for p in evaluation_preferences(len(tasks), method.eval_points):
        model.set_preference(p)
        for split in splits:
            curve[split].append(_curve_point(model, problem, split, p))
    reference = method.hv_reference
    hv: dict = {"reference": reference}
    record: dict = {"parameters": state["parameters"], "tasks": task_directions(tasks)}
    for split in splits:
        points = [[c["losses"][t.name] for t in tasks] for c in curve[split]]
        hv[split] = curve_hypervolume(points, reference)
        note = hypervolume_note(points, reference)
        if note is not None:
            hv.setdefault("note", note)
        if split == splits[-1]:
            details = [{k: v for k, v in c.items() if k not in ("preference", "losses", "accuracies")} for c in curve[split]]
            record.update(problem.curve_summary(np.asarray(points, dtype=float), details, reference))
    model.set_preference(torch.full((len(tasks),), 1.0 / len(tasks)))
    record.update({"splits": {s: problem.score(model, s) for s in splits}, "curve": curve, "hypervolume": hv})
    if len(tasks) > 2:
        # Per task, its scores at the preference focused on it (App. D, CIFAR-100/20).
        record["focused"] = {
            s: {t.name: {"accuracy": curve[s][i + 1].get("accuracies", {}).get(t.name), "loss": curve[s][i + 1]["losses"][t.name]} for i, t in enumerate(tasks)}
            for s in splits
        }
    return record


def predict(model: ControllableModel, data: dict, split: str, preference: torch.Tensor | list[float]) -> dict:
    """Scores of `model` on one split at `preference` (validated, normalised); for `predict`."""
    p = model.set_preference(preference)
    problem = problem_for(model.spec, {**data, "meta": model.meta}, model.tasks, model.hypernet.scale.device)
    out: dict = {"preference": [round(float(v), 6) for v in p]}
    details = problem.point_details(model)
    if details:  # a closed-form problem: its objectives and solution, no splits
        scores = problem.score(model, "test")
        return {**out, "losses": {k: v["loss"] for k, v in scores.items()}, **details}
    if split not in problem.splits:
        raise ConfigError(f"split {split!r} is not in the dataset; available: {', '.join(problem.splits) or 'none'}")
    return {**out, "metrics": problem.score(model, split)}


@torch.no_grad()
def predictions_csv(model: ControllableModel, data: dict, split: str, batch_size: int = 1024) -> str:
    """Predicted class per task and sample at the model's current preference, as CSV text."""
    if not all(isinstance(t, ClassificationTask) for t in model.tasks):
        raise ConfigError("--predictions writes predicted classes: every task must be a classification task")
    x_all, y_all = data[split]
    device = model.hypernet.scale.device
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index"] + [f"{t.name}_{c}" for t in model.tasks for c in ("pred", "true")])
    for start in range(0, x_all.shape[0], batch_size):
        outputs = model(prepare_inputs(x_all[start : start + batch_size], model.meta).to(device))
        preds = torch.stack([o.argmax(1).cpu() for o in outputs], dim=1)
        truth = y_all[start : start + batch_size]
        for i in range(preds.shape[0]):
            writer.writerow([start + i] + [int(v) for t in range(len(model.tasks)) for v in (preds[i, t], truth[i, t])])
    return buffer.getvalue()


# --------------------------------------------------------------------------- networks


def _load_network(checkpoint_path: Path, data: dict, device: str = "cpu"):
    """The MTL network of a final checkpoint (eval mode), the run's spec and the checkpoint."""
    from mtlpareto.data import dataset_tasks

    state = read_checkpoint(checkpoint_path)
    if "model" not in state:
        raise ConfigError(f"{checkpoint_path} is a hypernetwork checkpoint; load it with mtlpareto.controllable.load_controllable")
    spec = state["spec"]
    return NetworkLearner.load(state, dataset_tasks(spec["dataset"]), input_shape(data), resolve_device(device)), spec, state


def load_trained_model(checkpoint_path: Path, data: dict, device: str = "cpu"):
    """The MTL network of a final checkpoint (eval mode) and the run's spec."""
    model, spec, _ = _load_network(checkpoint_path, data, device)
    return model, spec


def evaluate_network(spec: dict, data: dict, checkpoint_path: Path) -> dict:
    from mtlpareto.data import dataset_tasks

    model, _, state = _load_network(checkpoint_path, data, spec["device"])
    tasks = dataset_tasks(spec["dataset"])
    problem = problem_for(spec, data, tasks, next(model.parameters()).device)
    result = {"splits": {s: problem.score(model, s) for s in problem.splits}, "tasks": task_directions(tasks)}
    if state.get("sharing_log"):  # per-epoch sharing statistics (MPPS's exclusive capacity), for figures
        result["sharing_log"] = state["sharing_log"]
    return result


EVALUATORS = {"network": evaluate_network, "hypernetwork": evaluate_hypernetwork, "dymu": evaluate_dymu}


def evaluate_run(spec: dict, data: dict, checkpoint_path: Path) -> dict:
    """Metrics of one trained run ({"splits": {split: {task: {metric: value}}}, ...})."""
    return EVALUATORS[METHODS.get(spec["method"]["name"]).learns](spec, data, Path(checkpoint_path))
