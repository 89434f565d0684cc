"""Controllable Pareto MTL (Lin et al. 2020) and Pareto HyperNetworks (Navon et al. 2021): the user API.

One hypernetwork maps a preference over the tasks to a whole MTL network, so every trade-off
is available at inference time from a single model:

    from mtlpareto.controllable import load_controllable
    model = load_controllable("results/quick/checkpoints/multimnist_ctrl/ctrl_pareto/default/seed0/model.pt")
    model.set_preference([0.3, 0.7])      # validated, normalised to sum 1; weights generated once
    left_logits, right_logits = model(model.prepare_inputs(images))

Where the pieces live: the methods in `mtlpareto.methods` (ctrl_linear, ctrl_pareto, phn_ls,
phn_epo; their base in methods/controllable.py), their update directions in
`mtlpareto.solvers.directions`, the hypernetwork in `mtlpareto.models.hypernet`, training in
the one loop of `mtlpareto.training` (learner `hypernetwork`), the closed-form problem of
Sec. 6 in `mtlpareto.data.synthetic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from mtlpareto.models.hypernet import ControllableModel


def load_controllable(checkpoint: str | Path, device: str = "cpu") -> "ControllableModel":
    """The trained controllable model of a checkpoint, in eval mode."""
    from mtlpareto.training.evaluate import load_controllable as _load

    return _load(Path(checkpoint), device=device)


def parse_preference(text: str, n_tasks: int) -> tuple[float, ...]:
    """'0.3,0.7' -> (0.3, 0.7) normalised to sum 1; ConfigError for a malformed or invalid vector."""
    from mtlpareto.errors import ConfigError
    from mtlpareto.models.hypernet import normalize_preference

    parts = [s.strip() for s in str(text).split(",")]
    try:
        values = [float(s) for s in parts]
    except ValueError:
        raise ConfigError(f"--preference {text!r}: expected comma-separated numbers, e.g. 0.3,0.7") from None
    return tuple(float(v) for v in normalize_preference(values, n_tasks))


def normalize_preference(preference: Any, n_tasks: int) -> "torch.Tensor":
    from mtlpareto.models.hypernet import normalize_preference as _norm

    return _norm(preference, n_tasks)


def predict(model: "ControllableModel", data: dict, split: str, preference: Any) -> dict:
    """Scores of `model` on one split at `preference` (a closed-form problem: its objectives and solution)."""
    from mtlpareto.training.evaluate import predict as _predict

    return _predict(model, data, split, preference)


def predictions_csv(model: "ControllableModel", data: dict, split: str) -> str:
    """Per-sample predicted classes at the model's current preference, as CSV text."""
    from mtlpareto.training.evaluate import predictions_csv as _csv

    return _csv(model, data, split)


__all__ = ["load_controllable", "normalize_preference", "parse_preference", "predict", "predictions_csv"]
