"""Generic MTL training: any registered dataset x model x method, deterministic on CPU.

Each epoch ends with an atomic resume checkpoint (model, optimiser, scheduler, method state
and RNG states; see run_state.py); a killed run restarts from it and reaches the same
weights as an uninterrupted one.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mtlpareto.data import TaskSpec, input_shape, task_specs
from mtlpareto.data.store import load_processed, prepare_inputs
from mtlpareto.errors import ConfigError, TrainingError
from mtlpareto.methods import StepContext, build_method
from mtlpareto.methods.base import resolve_jacobian_mode
from mtlpareto.models import MTLModel, build_model
from mtlpareto.training.run_state import CHECKPOINT_FORMAT, RunFiles, epoch_record, make_optimizer, start_run


def task_losses(outputs: list[torch.Tensor], targets: torch.Tensor, tasks: list[TaskSpec]) -> torch.Tensor:
    """Per-task losses [T] for the task dictionary's loss functions."""
    losses = []
    for t, (out, task) in enumerate(zip(outputs, tasks)):
        if task.loss == "cross_entropy":
            losses.append(F.cross_entropy(out, targets[:, t]))
        elif task.loss == "mse":
            losses.append(F.mse_loss(out.squeeze(-1), targets[:, t].to(out)))
        else:
            raise ConfigError(f"task {task.name!r}: unknown loss {task.loss!r}")
    return torch.stack(losses)


def make_model(spec: dict, data: dict) -> MTLModel:
    tasks = task_specs(spec["dataset"])
    options = {k: v for k, v in spec["model"].items() if k != "name"}
    return build_model(spec["model"]["name"], [t.n_classes for t in tasks], input_shape(data), **options)


def train_run(
    spec: dict,
    dataset_path: Path,
    checkpoint_path: Path,
    log_path: Path,
    threads: int = 1,
    progress: bool = True,
) -> dict:
    """Train one run described by `spec` (Profile.run_spec) and write the final checkpoint.

    Returns a summary dict. The resume file sits next to the final checkpoint and is removed
    once the run completes.
    """
    device = start_run(spec, threads)
    data = load_processed(dataset_path)
    tasks = task_specs(spec["dataset"])
    train = spec["train"]
    x_train, y_train = data["train"]
    meta = data.get("meta", {})

    # channels_last: NHWC kernels (max-pooling above all) are faster on CPU; same model, other float rounding.
    layout = torch.channels_last if train.get("memory_format") == "channels_last" and x_train.dim() == 4 else torch.contiguous_format
    model = make_model(spec, data).to(device, memory_format=layout)
    method = build_method(
        spec["method"],
        len(tasks),
        preference=spec["preference"] and tuple(spec["preference"]),
        task=spec["task"],
        preference_set=spec.get("preference_set") and [tuple(p) for p in spec["preference_set"]],
    )
    optimizer, scheduler = make_optimizer(list(model.parameters()) + method.parameters(), train)
    loader_rng = torch.Generator().manual_seed(spec["seed"])
    jacobian = resolve_jacobian_mode(train.get("jacobian", "auto"), device)

    files = RunFiles(spec, checkpoint_path, log_path, loader_rng)
    start_epoch = 0
    state = files.resume(device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        method.load_state_dict(state["method"])
        start_epoch = state["epoch"]

    n = x_train.shape[0]
    batch_size = train["batch_size"]
    steps_per_epoch = (n + batch_size - 1) // batch_size
    epochs = range(start_epoch, train["epochs"])
    bar = tqdm(total=train["epochs"] * steps_per_epoch, initial=start_epoch * steps_per_epoch, desc=spec["run"], disable=not progress, leave=False, mininterval=1.0)
    for epoch in epochs:
        model.train()
        started = time.perf_counter()
        order = torch.randperm(n, generator=loader_rng)
        loss_sum = torch.zeros(len(tasks))
        weight_sum = torch.zeros(len(tasks))
        for step in range(steps_per_epoch):
            idx = order[step * batch_size : (step + 1) * batch_size]
            x = prepare_inputs(x_train[idx], meta).to(device).contiguous(memory_format=layout)
            y = y_train[idx].to(device)
            optimizer.zero_grad(set_to_none=True)
            features = model.encode(x)
            losses = task_losses(model.decode(features), y, tasks)
            if not torch.isfinite(losses).all():
                bad = {t.name: float(v) for t, v in zip(tasks, losses.detach().cpu())}
                raise TrainingError(f"run {spec['run']}: non-finite loss at epoch {epoch + 1}, step {step + 1}: {bad}; lower the learning rate or check the data")
            weights = method.backward(StepContext(model, losses, features, step=epoch * steps_per_epoch + step, epoch=epoch, jacobian=jacobian))
            optimizer.step()
            loss_sum += losses.detach().cpu()
            weight_sum += weights.detach().cpu().float()
            bar.update(1)
        mean_losses = loss_sum / steps_per_epoch
        method.end_epoch(epoch, mean_losses)
        record = epoch_record(epoch + 1, optimizer.param_groups[0]["lr"], [t.name for t in tasks], mean_losses, weight_sum / steps_per_epoch, time.perf_counter() - started)
        bar.set_postfix({t.name: f"{float(v):.3f}" for t, v in zip(tasks, mean_losses)})
        if scheduler is not None:
            scheduler.step()
        files.end_epoch(
            record,
            lambda: {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "method": method.state_dict(),
            },
        )
    bar.close()
    final = {"format": CHECKPOINT_FORMAT, "spec": spec, "epochs": train["epochs"], "model": {k: v.cpu() for k, v in model.state_dict().items()}}
    files.finish(final)
    return {"run": spec["run"], "epochs": train["epochs"]}


def load_trained_model(checkpoint_path: Path, data: dict) -> tuple[MTLModel, dict]:
    if not Path(checkpoint_path).exists():
        raise ConfigError(f"checkpoint {checkpoint_path} not found; train the run first (snakemake or `mtlpareto train`)")
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    model = make_model(state["spec"], data)
    model.load_state_dict(state["model"])
    return model.eval(), state["spec"]
