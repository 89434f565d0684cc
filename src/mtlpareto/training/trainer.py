"""Generic MTL training: any registered dataset x model x method, deterministic on CPU.

Each epoch ends with an atomic checkpoint (model, optimiser, scheduler, method state and
RNG states); a killed run restarts from it and reaches the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mtlpareto.data import TaskSpec, input_shape, task_specs
from mtlpareto.data.store import load_processed, prepare_inputs
from mtlpareto.errors import ConfigError, TrainingError
from mtlpareto.methods import StepContext, build_method
from mtlpareto.methods.base import resolve_jacobian_mode
from mtlpareto.models import MTLModel, build_model
from mtlpareto.io import atomic_torch_save

CHECKPOINT_FORMAT = 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda requested but no CUDA device is available (use the quick profile or device: cpu)")
    return torch.device(name)


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


def _make_optimizer(params: list, train: dict) -> torch.optim.Optimizer:
    if train["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=train["lr"], momentum=train.get("momentum", 0.0), weight_decay=train.get("weight_decay", 0.0))
    return torch.optim.Adam(params, lr=train["lr"], weight_decay=train.get("weight_decay", 0.0))


def _rng_state(generator: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(), "loader": generator.get_state()}


def _set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    generator.set_state(state["loader"])


def _truncate_log(log_path: Path, epochs_done: int) -> None:
    """Keep only the log lines of epochs the checkpoint covers (a resumed run rewrites the rest)."""
    if not log_path.exists():
        return
    lines = [ln for ln in log_path.read_text().splitlines() if ln.strip() and json.loads(ln).get("epoch", 0) <= epochs_done]
    log_path.write_text("".join(ln + "\n" for ln in lines))


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
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(spec["device"])
    seed_everything(spec["seed"])
    data = load_processed(dataset_path)
    tasks = task_specs(spec["dataset"])
    train = spec["train"]
    x_train, y_train = data["train"]
    meta = data.get("meta", {})

    model = make_model(spec, data).to(device)
    method = build_method(
        spec["method"],
        len(tasks),
        preference=spec["preference"] and tuple(spec["preference"]),
        task=spec["task"],
        preference_set=spec.get("preference_set") and [tuple(p) for p in spec["preference_set"]],
    )
    optimizer = _make_optimizer(list(model.parameters()) + method.parameters(), train)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=train["lr_halve_every"], gamma=0.5) if train.get("lr_halve_every") else None
    loader_rng = torch.Generator().manual_seed(spec["seed"])
    jacobian = resolve_jacobian_mode(train.get("jacobian", "auto"), device)

    resume_path = checkpoint_path.with_name("resume.pt")
    start_epoch = 0
    if resume_path.exists():
        state = torch.load(resume_path, map_location=device, weights_only=False)
        if state.get("spec") != spec:
            raise TrainingError(f"run {spec['run']}: {resume_path} was written for other settings; delete it to restart")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        method.load_state_dict(state["method"])
        _set_rng_state(state["rng"], loader_rng)
        start_epoch = state["epoch"]
        _truncate_log(log_path, start_epoch)
        tqdm.write(f"[{spec['run']}] resuming after epoch {start_epoch}")
    elif log_path.exists():
        log_path.unlink()
    log_path.parent.mkdir(parents=True, exist_ok=True)

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
            x = prepare_inputs(x_train[idx], meta).to(device)
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
        record = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": {t.name: round(float(v), 6) for t, v in zip(tasks, mean_losses)},
            "mean_weight": {t.name: round(float(v), 6) for t, v in zip(tasks, weight_sum / steps_per_epoch)},
            "seconds": round(time.perf_counter() - started, 3),
        }
        bar.set_postfix({t.name: f"{float(v):.3f}" for t, v in zip(tasks, mean_losses)})
        if scheduler is not None:
            scheduler.step()
        with open(log_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if (epoch + 1) % train.get("checkpoint_every", 1) == 0 or epoch + 1 == train["epochs"]:
            atomic_torch_save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "spec": spec,
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "method": method.state_dict(),
                    "rng": _rng_state(loader_rng),
                },
                resume_path,
            )
    bar.close()
    final = {"format": CHECKPOINT_FORMAT, "spec": spec, "epochs": train["epochs"], "model": {k: v.cpu() for k, v in model.state_dict().items()}}
    atomic_torch_save(final, checkpoint_path)
    resume_path.unlink(missing_ok=True)
    return {"run": spec["run"], "epochs": train["epochs"]}


def load_trained_model(checkpoint_path: Path, data: dict) -> tuple[MTLModel, dict]:
    if not Path(checkpoint_path).exists():
        raise ConfigError(f"checkpoint {checkpoint_path} not found; train the run first (snakemake or `mtlpareto train`)")
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    model = make_model(state["spec"], data)
    model.load_state_dict(state["model"])
    return model.eval(), state["spec"]
