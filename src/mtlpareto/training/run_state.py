"""What every trainer does around its inner loop: set-up, the epoch log and resume checkpoints.

A run writes one JSON line per epoch and, every `checkpoint_every` epochs, an atomic resume
file next to its final checkpoint holding the training state, every RNG state and the epoch
log so far; a killed run restarts from it, rewrites its log from it (no lost, no duplicated
epochs) and reaches the same weights as an uninterrupted one.  The resume file is removed
once the final checkpoint is written.

`RunLock` keeps a second trainer (another Snakemake, `dvc repro`) off a run being trained;
`stop_on_signals` turns SIGTERM / SIGINT into a prompt, clean stop that keeps the resume file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from mtlpareto.errors import ConfigError, MTLParetoError, TrainingError
from mtlpareto.io import atomic_torch_save, atomic_write_text, ensure_writable, load_torch_file

CHECKPOINT_FORMAT = 2  # 2: tasks stored as Task.config() (type, name, options)
SIGINT_GRACE_SECONDS = 2.5  # see stop_on_signals


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


def set_threads(threads: int) -> None:
    """Compute threads of torch and of numpy's BLAS (the min-norm solver's Gram matrix).

    torch.set_num_threads does not reach numpy's OpenBLAS, which would otherwise start one
    thread per core in every job: measured on 2 cores with two jobs running, the Gram matrix of
    ResNet-18's gradients at T = 40 took 30 s instead of 0.6 s.
    """
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads, user_api="blas")


def start_run(spec: dict, threads: int) -> torch.device:
    """Threads, deterministic kernels, the run's device and seed: the first lines of a run."""
    set_threads(threads)
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
        self.records: list[dict] = []  # the epoch log so far, saved in every resume file

    def resume(self, device: torch.device) -> dict | None:
        """The saved training state (RNG states already restored), or None for a fresh start."""
        # Every file this run will write, checked before the first epoch rather than after the last.
        for path in (self.checkpoint_path, self.resume_path, self.log_path):
            ensure_writable(path)
        state = None
        if self.resume_path.exists():
            state = load_torch_file(self.resume_path, "resume file", "delete it to restart the run from epoch 1", map_location=device)
            if not isinstance(state, dict) or "epoch" not in state or "rng" not in state:
                raise TrainingError(f"run {self.spec['run']}: resume file {self.resume_path} is not a resume file of this project; delete it to restart")
            if state.get("spec") != self.spec:
                raise TrainingError(f"run {self.spec['run']}: {self.resume_path} was written for other settings; delete it to restart")
            _set_rng_state(state["rng"], self.loader_rng)
            if "log" in state:
                self.records = list(state["log"])
                self._write_log()
            else:  # a resume file written before the log was saved in it
                self._truncate_log(state["epoch"])
            tqdm.write(f"[{self.spec['run']}] resuming after epoch {state['epoch']}")
        elif self.log_path.exists():
            self.log_path.unlink()
        return state

    def end_epoch(self, record: dict, training_state: Callable[[], dict]) -> None:
        """Append the epoch's log line; write the resume file when one is due."""
        self.records.append(record)
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        epoch = record["epoch"]
        if epoch % self.every == 0 or epoch == self.epochs:
            state = {"format": CHECKPOINT_FORMAT, "spec": self.spec, "epoch": epoch, **training_state(), "rng": _rng_state(self.loader_rng), "log": self.records}
            atomic_torch_save(state, self.resume_path)

    def _write_log(self) -> None:
        atomic_write_text("".join(json.dumps(r) + "\n" for r in self.records), self.log_path)

    def finish(self, final: dict, keep_resume: bool = False) -> None:
        atomic_torch_save(final, self.checkpoint_path)
        if not keep_resume:
            self.resume_path.unlink(missing_ok=True)

    def _truncate_log(self, epochs_done: int) -> None:
        """Keep only the log lines of epochs the resume file covers (the resumed run rewrites the rest)."""
        if not self.log_path.exists():
            return
        lines = [ln for ln in self.log_path.read_text().splitlines() if ln.strip() and json.loads(ln).get("epoch", 0) <= epochs_done]
        self.log_path.write_text("".join(ln + "\n" for ln in lines))


class RunLock:
    """An exclusive lock on one run's training files, held while it trains.

    flock on `<checkpoint dir>/.train.lock`: the kernel releases it when the process ends,
    however it ends, so a killed trainer never leaves a stale lock.
    """

    def __init__(self, checkpoint_path: Path, run_id: str) -> None:
        self.path = Path(checkpoint_path).with_name(".train.lock")
        self.run_id = run_id
        self._fh = None

    def __enter__(self) -> "RunLock":
        ensure_writable(self.path)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise TrainingError(
                f"run {self.run_id} is already being trained by {holder} (lock {self.path}); two trainers would share "
                "one resume file and epoch log. Wait for that run (Snakemake or `dvc repro`) to finish, or stop it, then rerun."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"process {os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()  # closing releases the flock
            self._fh = None


class TrainingInterrupted(MTLParetoError):
    """SIGTERM / SIGINT stopped a run; its resume file holds the last completed epoch."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum  # what a shell reports for a process killed by the signal


@contextlib.contextmanager
def stop_on_signals(run_id: str, checkpoint_path: Path) -> Iterator[None]:
    """Stop the run at once on SIGTERM / SIGINT, raising TrainingInterrupted.

    The exception is raised between two Python operations of the current step: the resume file
    is written atomically, so it still holds the last completed epoch (one in progress is lost).
    """
    resume_path = Path(checkpoint_path).with_name("resume.pt")

    def stop(signum: int, _frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop: a second signal must not interrupt the clean-up
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if signum == signal.SIGINT:
            # Ctrl-C reaches Snakemake too. Should this job fail before Snakemake has begun to shut
            # down, Snakemake restores the outputs' previous versions and records the job as done,
            # so the next run would not resume this one; a moment's grace lets its shutdown go first.
            time.sleep(SIGINT_GRACE_SECONDS)
        name = signal.Signals(signum).name
        kept = f"resume file {resume_path} is intact: rerun to continue from it" if resume_path.exists() else "no epoch had completed, so a rerun starts from epoch 1"
        raise TrainingInterrupted(f"run {run_id} stopped by {name}; {kept}", signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _rng_state(loader: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(), "loader": loader.get_state()}


def _set_rng_state(state: dict, loader: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    loader.set_state(state["loader"])
