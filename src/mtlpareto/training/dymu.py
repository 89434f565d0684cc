"""Training, loading, evaluating and querying DYMU runs (learner `dymu`; models/dymu.py has the model).

A DYMU run starts from its anchor: the `single_task` checkpoints of the experiment its `anchor`
option names (spec["anchor_checkpoints"], one per task, same seed), frozen.  Its epochs run the paper's two
stages in the one training loop: the first `edge_epochs` train the edge hypernet on
sum_i r_i w_i L_i + Omega with straight-through Gumbel-softmax edges; the rest train the weight
hypernet on the task loss of the most likely tree, the edge hypernet fixed.  The final
checkpoint holds the anchor weights too, so it loads alone:

    from mtlpareto.training.dymu import load_dymu
    model = load_dymu("results/quick/checkpoints/scenes_dymu/dymu/default/seed0/model.pt")
    tree = model.configure([0.6, 0.2, 0.2], budget=1.0)
    print(tree.describe(model.task_names), model.cost())
    semantic, depth, normal = model(model.prepare_inputs(images))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtlpareto.data.problems import Problem
from mtlpareto.errors import ConfigError
from mtlpareto.io import load_torch_file
from mtlpareto.methods import Method, build_method
from mtlpareto.models.dymu import (
    TREE_BLOCKS,
    AnchorNet,
    DymuModel,
    EdgeHyperNet,
    Tree,
    WeightHyperNet,
    branching_regulariser,
    gumbel_softmax,
    mean_affinity,
    straight_through,
    task_affinity,
)
from mtlpareto.tasks import Task, build_task
from mtlpareto.training.learners import LEARNERS, Learner, build_from_architecture, check_finite, model_architecture

CHECKPOINT_KIND_DYMU = "dymu"
RETRAIN_ANCHOR = "retrain the anchor's single_task run (snakemake, or `mtlpareto train --run ...`)"


def build_anchor(architecture: dict, block_stages: list[int] | None, n_tasks: int) -> AnchorNet:
    """An anchor net of the architecture's backbone with fresh weights (load a state into it)."""
    name = architecture["name"]
    if name not in TREE_BLOCKS:
        raise ConfigError(f"dymu: backbone {name!r} has no tree blocks; supported: {', '.join(TREE_BLOCKS.names())}")
    if architecture["options"].get("architecture", "hard_sharing") != "hard_sharing":
        raise ConfigError("dymu: the anchor's single-task networks must use architecture hard_sharing")
    streams, heads = [], []
    with torch.random.fork_rng(devices=[]):  # throw-away initial weights; keep the run's RNG stream
        for i in range(n_tasks):
            net = build_from_architecture(architecture)
            streams.append(TREE_BLOCKS.get(name)(net.encoder, block_stages))
            heads.append(net.heads[i])
    return AnchorNet(streams, heads, torch.zeros(1, *architecture["input_shape"]))


def load_anchor(spec: dict, tasks: list[Task], input_shape: tuple[int, ...], block_stages: list[int] | None) -> AnchorNet:
    """The anchor net from the single-task checkpoints spec["anchor_checkpoints"] (task order; `mtlpareto
    train` adds them from pipeline.anchor_checkpoints), checked against the run."""
    paths = spec.get("anchor_checkpoints")
    if not paths or len(paths) != len(tasks):
        raise ConfigError(f"run {spec['run']}: dymu needs one anchor checkpoint per task (spec['anchor_checkpoints'], set by `mtlpareto train`), got {paths!r}")
    architecture = model_architecture(spec, tasks, input_shape)
    anchor = build_anchor(architecture, block_stages, len(tasks))
    for i, path in enumerate(paths):
        state = load_torch_file(Path(path), "anchor checkpoint", RETRAIN_ANCHOR)
        own = state.get("spec", {}) if isinstance(state, dict) else {}
        if own.get("method", {}).get("name") != "single_task" or own.get("task") != i:
            raise ConfigError(f"{path}: not the single_task run of task {tasks[i].name!r} (the anchor of stream {i})")
        if own.get("model") != spec["model"] or own.get("dataset") != spec["dataset"]:
            raise ConfigError(f"{path}: the anchor run's model or dataset differs from run {spec['run']}'s; the anchor must be the same backbone on the same data")
        net = build_from_architecture(architecture)
        net.load_state_dict(state["model"])
        blocks = TREE_BLOCKS.get(architecture["name"])(net.encoder, block_stages)
        with torch.no_grad():
            for target, source in zip(anchor.streams[i], blocks):
                target.load_state_dict(source.state_dict())
            anchor.heads[i].load_state_dict(net.heads[i].state_dict())
    return anchor


def build_dymu(anchor: AnchorNet, method_options: dict, task_names: list[str]) -> DymuModel:
    edge = EdgeHyperNet(anchor.n_tasks, anchor.n_layers, **method_options["edge"])
    weight = WeightHyperNet(anchor, embedding_dim=method_options["edge"]["embedding_dim"], **method_options["weight"])
    return DymuModel(anchor, edge, weight, task_names)


def affinity_images(problem: Problem, count: int) -> torch.Tensor:
    """The first `count` training images in a fixed order (the same on resume)."""
    images: list[torch.Tensor] = []
    for batch in problem.batches(torch.Generator().manual_seed(0)):
        images.append(problem.inputs(batch))
        if sum(x.shape[0] for x in images) >= count:
            break
    x = torch.cat(images)[:count]
    if x.shape[0] < 3:
        raise ConfigError(f"dymu: task affinity needs at least 3 training images, the split has {x.shape[0]}")
    return x


@LEARNERS.register("dymu")
class DymuLearner(Learner):
    """Edge hypernet, then weight hypernet, over a frozen anchor net (see the module docstring)."""

    def __init__(self, spec: dict, tasks: list[Task], input_shape: tuple[int, ...], method: Method, device: torch.device, memory_format: torch.memory_format, meta: dict | None = None) -> None:
        from mtlpareto.methods.dymu import Dymu

        if not isinstance(method, Dymu):
            raise ConfigError(f"method {spec['method']['name']!r} does not train a DYMU model")
        if method.anchor is None:
            raise ConfigError(f"run {spec['run']}: dymu: option anchor must name the experiment whose single_task runs form the anchor net")
        self.tasks = tasks
        self.meta = dict(meta or {})
        self.architecture = model_architecture(spec, tasks, input_shape)
        self.options = {"block_stages": method.block_stages, "edge": dict(method.edge_net), "weight": dict(method.weight_net)}
        anchor = load_anchor(spec, tasks, input_shape, method.block_stages)
        self.model = build_dymu(anchor, self.options, [t.name for t in tasks]).to(device)
        self.params = list(self.model.edge.parameters()) + list(self.model.weight.parameters())
        self.affinity: torch.Tensor | None = None

    def parameters(self) -> list[torch.nn.Parameter]:
        return self.params

    def step(self, problem, batch, method, step, epoch, jacobian, run):
        if self.affinity is None:
            # Computed at the first step (and again, identically, after a resume): the learner
            # sees the data only through the problem.
            self.affinity = task_affinity(self.model.anchor.layer_features(affinity_images(problem, method.affinity_images)))
        r, c = method.sample()
        device = self.model.edge.device
        r = r.to(device)
        weights = r * method.task_weights.to(device)
        x = problem.inputs(batch)
        anchor = self.model.anchor
        if epoch < method.edge_epochs:
            logits = self.model.edge(r, c)
            tau = method.temperature(step)
            # One Gumbel draw per decision layer: its relaxed sample nu enters Omega, its
            # straight-through one-hot picks the parents of the forward pass.
            samples = [gumbel_softmax(l, tau, method.gumbel, hard=False) for l in logits]
            choices = [straight_through(v) for v in samples]
            losses = problem.losses(anchor.forward_relaxed(x, choices), batch)
            probabilities = [torch.softmax(l, dim=-1) for l in logits]
            omega = branching_regulariser(samples, probabilities, r, c, mean_affinity(self.affinity).to(device), method.lambda_active, method.lambda_inactive, method.active_threshold)
            total = (weights * losses).sum() + omega
            method.count("regulariser", float(omega.detach()))
            method.count("temperature", tau)
            method.count("parameters", anchor.cost(Tree.from_choices(choices))["parameters"])
        else:
            with torch.no_grad():
                tree = Tree.from_choices(self.model.edge(r, c))
            losses = problem.losses(anchor.forward_tree(x, tree, self.model.weight.offsets(anchor, r, c)), batch)
            total = (weights * losses).sum()
            method.count("parameters", anchor.cost(tree)["parameters"])
        check_finite(losses, run, epoch, step, self.tasks)
        total.backward()
        return losses.detach().cpu(), weights.detach().cpu().float()

    def training_state(self) -> dict:
        return {"kind": CHECKPOINT_KIND_DYMU, "edge": self.model.edge.state_dict(), "weight": self.model.weight.state_dict()}

    def load_training_state(self, state: dict) -> None:
        self.model.edge.load_state_dict(state["edge"])
        self.model.weight.load_state_dict(state["weight"])

    def final_checkpoint(self, spec: dict, epochs: int, checkpoint_format: int) -> dict:
        def cpu(module: torch.nn.Module) -> dict:
            return {k: v.detach().cpu() for k, v in module.state_dict().items()}

        return {
            "format": checkpoint_format,
            "kind": CHECKPOINT_KIND_DYMU,
            "spec": spec,
            "epochs": epochs,
            "architecture": {"anchor": self.architecture, **self.options},
            "tasks": [t.config() for t in self.tasks],
            "meta": self.meta,
            "affinity": self.affinity.cpu() if self.affinity is not None else None,
            "anchor": cpu(self.model.anchor),
            "edge": cpu(self.model.edge),
            "weight": cpu(self.model.weight),
        }


# --------------------------------------------------------------------------- loading and querying


def dymu_from_state(state: dict, checkpoint_path: Path, device: str = "cpu") -> DymuModel:
    """The model of a read DYMU checkpoint, in eval mode, with `prepare_inputs`, `tasks`, `spec`."""
    from mtlpareto.data.store import prepare_inputs
    from mtlpareto.training.run_state import resolve_device

    if state.get("kind") != CHECKPOINT_KIND_DYMU:
        raise ConfigError(f"{checkpoint_path} is not a DYMU checkpoint; `predict --budget` needs a run of method dymu")
    tasks = [build_task(t) for t in state["tasks"]]
    arch = state["architecture"]
    anchor = build_anchor(arch["anchor"], arch["block_stages"], len(tasks))
    anchor.load_state_dict(state["anchor"])
    with torch.random.fork_rng(devices=[]):
        model = build_dymu(anchor, arch, [t.name for t in tasks])
    model.edge.load_state_dict(state["edge"])
    model.weight.load_state_dict(state["weight"])
    model.tasks = tasks
    model.spec = state["spec"]
    model.meta = state["meta"]
    model.affinity = state.get("affinity")
    model.prepare_inputs = lambda x: prepare_inputs(x, model.meta)  # type: ignore[method-assign]
    return model.to(resolve_device(device)).eval()


def load_dymu(checkpoint_path: str | Path, device: str = "cpu") -> DymuModel:
    """A trained DYMU model: `configure(r, c)`, then call it on `prepare_inputs(images)`."""
    from mtlpareto.training.evaluate import read_checkpoint

    return dymu_from_state(read_checkpoint(Path(checkpoint_path)), Path(checkpoint_path), device)


def setting_record(model: DymuModel, tree: Tree) -> dict:
    return {"tree": tree.to_json(), "groups": tree.groups(model.task_names), "text": tree.describe(model.task_names), **model.cost(tree)}


def predict_dymu(model: DymuModel, data: dict, split: str, preference: Any, budget: float) -> dict:
    """The chosen architecture for (preference, budget), its cost and its scores on `split`."""
    from mtlpareto.training.evaluate import problem_for

    tree = model.configure(preference, budget)
    r, c = model.setting
    problem = problem_for(model.spec, {**data, "meta": model.meta}, model.tasks, model.edge.device)
    if split not in problem.splits:
        raise ConfigError(f"split {split!r} is not in the dataset; available: {', '.join(problem.splits) or 'none'}")
    return {"preference": list(r), "budget": c, **setting_record(model, tree), "metrics": problem.score(model, split)}


# --------------------------------------------------------------------------- evaluation


def sweep_preferences(n_tasks: int, points: int) -> list[tuple[int, float, torch.Tensor]]:
    """(task t, s, r) with r = s e_t + (1 - s) * uniform over the other tasks, s in linspace(0, 1, points)."""
    out = []
    for t in range(n_tasks):
        for s in np.linspace(0.0, 1.0, points):
            r = torch.full((n_tasks,), (1.0 - s) / (n_tasks - 1))
            r[t] = s
            out.append((t, float(s), r))
    return out


EVAL_PREFERENCE_SEED = 2022  # the evaluation's preference draws: fixed, apart from the training streams


def simplex_preferences(n_tasks: int, count: int, seed: int = EVAL_PREFERENCE_SEED) -> list[torch.Tensor]:
    """`count` preferences drawn uniformly from the simplex (Dirichlet(1, ..., 1)), reproducibly."""
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.dirichlet(np.ones(n_tasks))).to(torch.float32) for _ in range(count)]


def uniformity(losses: list[float], preference: list[float]) -> float:
    """1 - KL(l_hat || uniform), l_hat_j = r_j l_j / sum_i r_i l_i (Navon et al. 2021, as DYMU reports it)."""
    w = np.asarray(preference, dtype=float) * np.asarray(losses, dtype=float)
    if w.sum() <= 0:
        return float("nan")
    p = w / w.sum()
    n = len(p)
    kl = float(sum(pi * np.log(pi * n) for pi in p if pi > 0))
    return 1.0 - kl


def evaluate_dymu(spec: dict, data: dict, checkpoint_path: Path) -> dict:
    """Scores over preferences x budgets: losses, parameters, FLOPs, trees; per budget HV and uniformity."""
    from mtlpareto.training.evaluate import curve_hypervolume, hypervolume_note, problem_for, read_checkpoint, task_directions

    state = read_checkpoint(checkpoint_path)
    model = dymu_from_state(state, checkpoint_path, device=spec["device"])
    tasks, names = model.tasks, model.task_names
    method = build_method(spec["method"], len(tasks))
    problem = problem_for(spec, {**data, "meta": model.meta}, tasks, model.edge.device)
    split = problem.splits[-1]
    curve = []
    cache: dict[tuple, dict] = {}
    for budget in method.eval_budgets:
        for t, s, r in sweep_preferences(len(tasks), method.eval_points):
            key = (tuple(round(float(v), 6) for v in r), budget)
            if key not in cache:
                tree = model.configure(r, budget)
                scores = problem.score(model, split)
                cache[key] = {"preference": list(key[0]), "budget": budget, **setting_record(model, tree), "losses": {n: scores[n]["loss"] for n in names}, "metrics": scores}
            curve.append({"task": names[t], "weight": s, **cache[key]})
    # The paper's summary: HV and mean uniformity over preferences drawn uniformly from the simplex,
    # the mean cost over many more draws (the trees alone; no data pass).
    sampled = simplex_preferences(len(tasks), method.eval_preferences)
    cost_draws = simplex_preferences(len(tasks), method.cost_preferences, EVAL_PREFERENCE_SEED + 1)
    summary = {}
    for budget in method.eval_budgets:
        points = []
        for r in sampled:
            model.configure(r, budget)
            scores = problem.score(model, split)
            points.append({"preference": [float(v) for v in model.setting[0]], "losses": [scores[n]["loss"] for n in names]})
        losses = [p["losses"] for p in points]
        trees = [model.choose(r, budget) for r in cost_draws]
        costs = [model.cost(t) for t in trees]
        summary[str(budget)] = {
            "budget": budget,
            "parameters": float(np.mean([c["parameters"] for c in costs])),
            "flops": float(np.mean([c["flops"] for c in costs])),
            "uniformity": float(np.mean([uniformity(p["losses"], p["preference"]) for p in points])),
            "hypervolume": curve_hypervolume(losses, method.hv_reference),
            "hypervolume_note": hypervolume_note(losses, method.hv_reference),
            "distinct_trees": len(set(trees)),
            "preferences": len(sampled),
            "cost_preferences": len(cost_draws),
            "points": points,
        }
    uniform = torch.full((len(tasks),), 1.0 / len(tasks))
    model.configure(uniform, method.eval_budgets[0])
    n, layers = model.n_tasks, model.anchor.n_layers
    return {
        "tasks": task_directions(tasks),
        "splits": {s: problem.score(model, s) for s in problem.splits},
        "dymu": {
            "split": split,
            "hv_reference": method.hv_reference,
            "curve": curve,
            "summary": summary,
            "anchor_cost": model.cost(Tree.disjoint(n, layers)),
            "control_parameters": sum(p.numel() for p in model.edge.parameters()) + sum(p.numel() for p in model.weight.parameters()),
            "shared_cost": model.cost(Tree.shared(n, layers)),
            "affinity": [[[round(float(v), 4) for v in row] for row in layer] for layer in state["affinity"]] if state.get("affinity") is not None else None,
        },
    }
