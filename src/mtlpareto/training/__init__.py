"""Training and evaluation: one loop (loop.py) and one evaluator (evaluate.py) for every method.

What a method trains (a network or a hypernetwork) is a learner (learners.py); what it is
trained on (a dataset or a closed-form problem) is a problem (mtlpareto.data.problems).
"""

from __future__ import annotations

from pathlib import Path


def train_run(spec: dict, dataset_path: Path, checkpoint_path: Path, log_path: Path, threads: int = 1, progress: bool = True, keep_resume: bool = False) -> dict:
    """Train one run (Profile.run_spec) and write its final checkpoint: the CLI's entry point."""
    from mtlpareto.training.loop import train_run as _train

    return _train(spec, Path(dataset_path), Path(checkpoint_path), Path(log_path), threads=threads, progress=progress, keep_resume=keep_resume)


def evaluate_run(spec: dict, data: dict, checkpoint_path: Path) -> dict:
    """Metrics of one trained run ({"splits": ...} and more): the CLI's entry point."""
    from mtlpareto.training.evaluate import evaluate_run as _evaluate

    return _evaluate(spec, data, Path(checkpoint_path))


__all__ = ["evaluate_run", "train_run"]
