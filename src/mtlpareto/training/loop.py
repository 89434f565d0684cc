"""The one training loop: any dataset or closed-form problem x architecture x method.

The learner (a network, or a hypernetwork: learners.py) and the problem (a dataset, or a
closed-form problem: data/problems.py) are interfaces, so the loop has no branch on either.
Each epoch ends with an atomic resume checkpoint (learner, optimiser, scheduler, method state
and RNG states; see run_state.py); a killed run restarts from it and reaches the same weights
as an uninterrupted one.  Deterministic on CPU for a fixed seed.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mtlpareto.data import DATASETS, dataset_tasks, input_shape
from mtlpareto.data.problems import make_problem
from mtlpareto.data.store import load_processed
from mtlpareto.errors import ConfigError
from mtlpareto.methods import build_method
from mtlpareto.training.learners import LEARNERS
from mtlpareto.training.run_state import CHECKPOINT_FORMAT, RunFiles, epoch_record, make_optimizer, start_run

JACOBIAN_MODES = ("auto", "batched", "loop")


def resolve_jacobian_mode(mode: str, device: torch.device | str) -> str:
    """Strategy for gradients w.r.t. parameters. "auto": T backward passes on CPU, one
    vmapped backward on GPUs.

    Measured on CPU (benchmarks/step_time.py --jacobian loop batched): for the shared
    parameters the vmapped backward is 1.2-1.4x slower than the loop for LeNet (T=2..40) and
    ResNet-18 (T=10), and holds all T gradients' intermediates at once. On GPUs the batched
    product fills the device instead (not measured here: no GPU was available).
    """
    if mode not in JACOBIAN_MODES:
        raise ConfigError(f"jacobian: {mode!r} is not one of {', '.join(JACOBIAN_MODES)}")
    if mode == "auto":
        return "batched" if torch.device(device).type == "cuda" else "loop"
    return mode


def memory_format_of(train: dict, sample_shape: tuple[int, ...]) -> torch.memory_format:
    # channels_last: NHWC kernels (max-pooling above all) are faster on CPU; same model, other float rounding.
    return torch.channels_last if train["memory_format"] == "channels_last" and len(sample_shape) == 3 else torch.contiguous_format


def train_run(spec: dict, dataset_path: Path, checkpoint_path: Path, log_path: Path, threads: int = 1, progress: bool = True, keep_resume: bool = False) -> dict:
    """Train one run described by `spec` (Profile.run_spec) and write the final checkpoint.

    Returns a summary dict. The resume file sits next to the final checkpoint and is removed
    once the run completes, unless `keep_resume` (a job that trains several runs removes them
    when all are done; a rerun then finds this run complete in it and trains no epoch).
    """
    device = start_run(spec, threads)
    data = load_processed(dataset_path)
    tasks = dataset_tasks(spec["dataset"])
    train = spec["train"]
    meta = data.get("meta", {})
    shape = input_shape(data)
    layout = memory_format_of(train, shape)
    method = build_method(
        spec["method"],
        len(tasks),
        preference=spec["preference"] and tuple(spec["preference"]),
        task=spec["task"],
        preference_set=spec.get("preference_set") and [tuple(p) for p in spec["preference_set"]],
    )
    learner = LEARNERS.get(method.learns)(spec, tasks, shape, method, device, layout, meta)
    problem = make_problem(DATASETS.get(spec["dataset"]["kind"]), data, tasks, train["batch_size"], device, layout)
    optimizer, scheduler = make_optimizer(learner.parameters(), train)
    loader_rng = torch.Generator().manual_seed(spec["seed"])
    jacobian = resolve_jacobian_mode(train["jacobian"], device)

    files = RunFiles(spec, checkpoint_path, log_path, loader_rng)
    start_epoch = 0
    state = files.resume(device)
    if state is not None:
        learner.load_training_state(state)
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        method.load_state_dict(state["method"])
        start_epoch = state["epoch"]

    steps = problem.steps_per_epoch
    names = [t.name for t in tasks]
    bar = tqdm(total=train["epochs"] * steps, initial=start_epoch * steps, desc=spec["run"], disable=not progress, leave=False, mininterval=1.0)
    for epoch in range(start_epoch, train["epochs"]):
        learner.model.train()
        started = time.perf_counter()
        loss_sum = torch.zeros(len(tasks))
        weight_sum = torch.zeros(len(tasks))
        method.start_epoch(epoch, optimizer.param_groups[0]["lr"])
        for step, batch in enumerate(problem.batches(loader_rng)):
            optimizer.zero_grad(set_to_none=True)
            losses, weights = learner.step(problem, batch, method, epoch * steps + step, epoch, jacobian, spec["run"])
            optimizer.step()
            if method.needs_losses_after_step:
                method.after_step(learner.batch_losses(problem, batch))
            loss_sum += losses
            weight_sum += weights
            bar.update(1)
        mean_losses = loss_sum / steps
        method.end_epoch(epoch, mean_losses)
        stats = method.pop_stats()
        extra = {"method_stats": {k: round(v / steps, 4) for k, v in sorted(stats.items())}} if stats else {}
        sharing = learner.end_epoch(epoch, train["epochs"])  # e.g. MPPS's exclusive capacity
        if sharing:
            extra["sharing"] = sharing
        record = epoch_record(epoch + 1, optimizer.param_groups[0]["lr"], names, mean_losses, weight_sum / steps, time.perf_counter() - started, **extra)
        bar.set_postfix({n: f"{float(v):.3f}" for n, v in zip(names, mean_losses)})
        if scheduler is not None:
            scheduler.step()
        files.end_epoch(
            record,
            lambda: {
                **learner.training_state(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "method": method.state_dict(),
            },
        )
    bar.close()
    final = learner.final_checkpoint(spec, train["epochs"], CHECKPOINT_FORMAT)
    sharing_log = [r["sharing"] for r in files.records if "sharing" in r]
    files.finish({**final, "sharing_log": sharing_log} if sharing_log else final, keep_resume=keep_resume)
    return {"run": spec["run"], "epochs": train["epochs"]}
