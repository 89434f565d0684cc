"""Controllable Pareto MTL (Lin et al. 2020) and Pareto HyperNetworks (Navon et al. 2021).

One hypernetwork maps a preference over the tasks to a whole MTL network, so every trade-off
is available at inference time from a single model:

    from mtlpareto.controllable import load_controllable
    model = load_controllable("results/checkpoints/multimnist_ctrl/ctrl_pareto/default/seed0/model.pt")
    model.set_preference([0.3, 0.7])      # validated, normalised to sum 1; weights generated once
    left_logits, right_logits = model(model.prepare_inputs(images))

Modules: `directions` (update directions: ctrl_pareto's constrained min-norm direction, EPO's
LP), `trainer` (the "controllable" trainer), `synthetic` (the closed-form problem of Sec. 6),
`base` (step context and method base class).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

# The method registry imports methods/ctrl_*.py, which import controllable.base, which
# imports methods.base: completing the registry first makes every import order work.
import mtlpareto.methods  # noqa: E402,F401

if TYPE_CHECKING:
    from mtlpareto.models.hypernet import ControllableModel


def load_controllable(checkpoint: str | Path, device: str = "cpu") -> "ControllableModel":
    """The trained controllable model of a checkpoint, in eval mode (see trainer.load_controllable)."""
    from mtlpareto.controllable.trainer import load_controllable as _load

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


def normalize_preference(preference: Any, n_tasks: int):
    from mtlpareto.models.hypernet import normalize_preference as _norm

    return _norm(preference, n_tasks)


__all__ = ["load_controllable", "normalize_preference", "parse_preference"]
