"""Trainers behind one registry: a method names the trainer that runs it (Method.trainer).

A trainer provides `train(spec, dataset_path, checkpoint_path, log_path, threads, progress)`
and `evaluate(spec, data, checkpoint_path) -> dict` (merged into the run's metrics.json,
which must contain "splits": {split: {task: {metric: value}}}).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mtlpareto.registry import Registry


class Trainer(Protocol):
    def train(self, spec: dict, dataset_path: Path, checkpoint_path: Path, log_path: Path, threads: int = 1, progress: bool = True) -> dict: ...

    def evaluate(self, spec: dict, data: dict, checkpoint_path: Path) -> dict: ...


TRAINERS: Registry[Trainer] = Registry("trainer")


class StandardTrainer:
    """One MTL network trained by a (loss-weighting or gradient) method; see trainer.py."""

    def train(self, spec, dataset_path, checkpoint_path, log_path, threads=1, progress=True) -> dict:
        from mtlpareto.training.trainer import train_run

        return train_run(spec, dataset_path, checkpoint_path, log_path, threads=threads, progress=progress)

    def evaluate(self, spec, data, checkpoint_path) -> dict:
        from mtlpareto.data import task_specs
        from mtlpareto.metrics.classification import evaluate_model
        from mtlpareto.training.trainer import load_trained_model

        model, _ = load_trained_model(checkpoint_path, data)
        return {"splits": evaluate_model(model, data, task_specs(spec["dataset"]))}


TRAINERS.register("standard")(StandardTrainer())


def trainer_for(spec: dict) -> Trainer:
    from mtlpareto.methods import METHODS

    return TRAINERS.get(METHODS.get(spec["method"]["name"]).trainer)


def train_run(spec: dict, dataset_path: Path, checkpoint_path: Path, log_path: Path, threads: int = 1, progress: bool = True) -> dict:
    """Train one run (Profile.run_spec) and write its final checkpoint: the CLI's entry point."""
    return trainer_for(spec).train(spec, Path(dataset_path), Path(checkpoint_path), Path(log_path), threads=threads, progress=progress)


def evaluate_run(spec: dict, data: dict, checkpoint_path: Path) -> dict:
    """Metrics of one trained run ({"splits": ...} and more): the CLI's entry point."""
    return trainer_for(spec).evaluate(spec, data, Path(checkpoint_path))


__all__ = ["TRAINERS", "Trainer", "evaluate_run", "trainer_for", "train_run"]

# Trainer registry lines: one per trainer module outside this file.
from mtlpareto.controllable import trainer as _controllable_trainer  # noqa: E402,F401
