"""What every trainer does around its inner loop: set-up, the epoch log and resume checkpoints.

A run writes one JSON line per epoch and, every `checkpoint_every` epochs, an atomic resume
file next to its final checkpoint holding the training state and every RNG state; a killed
run restarts from it and reaches the same weights as an uninterrupted one.  The resume file
is removed once the final checkpoint is written.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from mtlpareto.errors import ConfigError, TrainingError
from mtlpareto.io import atomic_torch_save

CHECKPOINT_FORMAT = 2  # 2: tasks stored as Task.config() (type, name, options)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda requested but no CUDA device is available (use the quick profile or device: cpu)")
    return torch.device(name)


def use_deterministic_algorithms() -> None:
    """torch.use_deterministic_algorithms(True, warn_only=True) without importing torch._inductor.

    The public function imports the inductor to set its config flag, about 3 s per job on
    CPU; nothing here is compiled, so setting the ATen flag alone is the same thing.
    """
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None:  # a future torch without the private setter
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        set_flag(True, warn_only=True)


def start_run(spec: dict, threads: int) -> torch.device:
    """Threads, deterministic kernels, the run's device and seed: the first lines of a run."""
    torch.set_num_threads(threads)
    use_deterministic_algorithms()
    device = resolve_device(spec["device"])
    seed_everything(spec["seed"])
    return device


def make_optimizer(params: list, train: dict) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.StepLR | None]:
    """The optimiser of params.yaml's `train` block and its step schedule (lr halved every k epochs)."""
    if train["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(params, lr=train["lr"], momentum=train["momentum"], weight_decay=train["weight_decay"])
    elif train["optimizer"] == "adam":
        optimizer = torch.optim.Adam(params, lr=train["lr"], weight_decay=train["weight_decay"])
    else:
        raise ConfigError(f"train.optimizer: {train['optimizer']!r} is not one of sgd, adam")
    every = train["lr_halve_every"]
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=every, gamma=0.5) if every else None


def epoch_record(epoch: int, lr: float, task_names: list[str], mean_losses: torch.Tensor, mean_weights: torch.Tensor, seconds: float, **extra) -> dict:
    """One line of the epoch log (1-based epoch, losses and weights rounded for reading)."""
    return {
        "epoch": epoch,
        "lr": lr,
        "train_loss": {name: round(float(v), 6) for name, v in zip(task_names, mean_losses)},
        "mean_weight": {name: round(float(v), 6) for name, v in zip(task_names, mean_weights)},
        "seconds": round(seconds, 3),
        **extra,
    }


class RunFiles:
    """The epoch log, resume file and final checkpoint of one run (see the module docstring)."""

    def __init__(self, spec: dict, checkpoint_path: Path, log_path: Path, loader_rng: torch.Generator) -> None:
        self.spec = spec
        self.checkpoint_path = checkpoint_path
        self.resume_path = checkpoint_path.with_name("resume.pt")
        self.log_path = log_path
        self.loader_rng = loader_rng
        self.epochs = spec["train"]["epochs"]
        self.every = spec["train"].get("checkpoint_every", 1)

    def resume(self, device: torch.device) -> dict | None:
        """The saved training state (RNG states already restored), or None for a fresh start."""
        state = None
        if self.resume_path.exists():
            state = torch.load(self.resume_path, map_location=device, weights_only=False)
            if state.get("spec") != self.spec:
                raise TrainingError(f"run {self.spec['run']}: {self.resume_path} was written for other settings; delete it to restart")
            _set_rng_state(state["rng"], self.loader_rng)
            self._truncate_log(state["epoch"])
            tqdm.write(f"[{self.spec['run']}] resuming after epoch {state['epoch']}")
        elif self.log_path.exists():
            self.log_path.unlink()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return state

    def end_epoch(self, record: dict, training_state: Callable[[], dict]) -> None:
        """Append the epoch's log line; write the resume file when one is due."""
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        epoch = record["epoch"]
        if epoch % self.every == 0 or epoch == self.epochs:
            state = {"format": CHECKPOINT_FORMAT, "spec": self.spec, "epoch": epoch, **training_state(), "rng": _rng_state(self.loader_rng)}
            atomic_torch_save(state, self.resume_path)

    def finish(self, final: dict) -> None:
        atomic_torch_save(final, self.checkpoint_path)
        self.resume_path.unlink(missing_ok=True)

    def _truncate_log(self, epochs_done: int) -> None:
        """Keep only the log lines of epochs the resume file covers (the resumed run rewrites the rest)."""
        if not self.log_path.exists():
            return
        lines = [ln for ln in self.log_path.read_text().splitlines() if ln.strip() and json.loads(ln).get("epoch", 0) <= epochs_done]
        self.log_path.write_text("".join(ln + "\n" for ln in lines))


def _rng_state(loader: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(), "loader": loader.get_state()}


def _set_rng_state(state: dict, loader: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    loader.set_state(state["loader"])
