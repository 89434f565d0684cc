"""Training loop with atomic checkpoints, resume and a JSON-lines log."""

from mtlpareto.training.trainer import train_run

__all__ = ["train_run"]
