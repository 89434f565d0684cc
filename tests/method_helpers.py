"""Shared helpers of the per-method tests: a small MTL network, its losses, reference gradients,
a simplex grid for brute-force solves."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS, StepContext, build_method
from mtlpareto.methods.cagrad import cagrad_dual_weights, cagrad_objective
from mtlpareto.methods.dwa import dwa_weights
from mtlpareto.methods.graddrop import graddrop_mask
from mtlpareto.methods.gradnorm import gradnorm_weight_gradient
from mtlpareto.methods.pcgrad import project_conflicting
from mtlpareto.models import HardSharing, MTLModel

BASELINES = ["uncertainty", "gradnorm", "dwa", "rlw", "pcgrad", "cagrad", "graddrop", "pareto_mtl", "nash_mtl", "aligned_mtl", "imtl", "famo"]
PREFS = [(k / 6, 1 - k / 6) for k in range(1, 6)]
PREFS3 = [(1 / 3, 1 / 3, 1 / 3), (0.6, 0.2, 0.2), (0.2, 0.6, 0.2), (0.2, 0.2, 0.6)]


def _mtl(in_dim: int = 6, rep: int = 5, n_tasks: int = 2, seed: int = 0, shared_heads: bool = False) -> MTLModel:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(in_dim, 7), nn.Tanh(), nn.Linear(7, rep), nn.Tanh())
    heads = [nn.Sequential(nn.Linear(rep, 4), nn.Tanh(), nn.Linear(4, 1)) for _ in range(n_tasks)]
    if shared_heads:  # identical heads: with identical targets every task has the same gradient
        heads = [copy.deepcopy(heads[0]) for _ in range(n_tasks)]
    return HardSharing(encoder, heads)


def _forward(model: MTLModel, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = model.encode(x)
    losses = torch.stack([((o.squeeze(-1) - y[:, t]) ** 2).mean() for t, o in enumerate(model.decode(z))])
    return losses, z


def _data(seed: int, n_tasks: int = 2, batch: int = 8, in_dim: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, in_dim, generator=g), torch.randn(batch, n_tasks, generator=g)


def _task_grads(model: MTLModel, losses: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    """Reference per-task gradients: one plain backward pass per task."""
    rows = [torch.autograd.grad(losses[t], params, retain_graph=True) for t in range(len(losses))]
    return torch.stack([torch.cat([g.flatten() for g in row]) for row in rows])


def _flat_grad(params) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in params])


def _kwargs(name: str, n_tasks: int = 2) -> dict:
    if name == "pareto_mtl":
        prefs = PREFS if n_tasks == 2 else PREFS3
        return {"preference": prefs[1], "preference_set": prefs}
    return {}


def _options(name: str) -> dict:
    return {"rlw": {"seed": 3}, "pcgrad": {"seed": 3}, "graddrop": {"seed": 3}, "pareto_mtl": {"init_steps": 2}}.get(name, {})


def _simplex_grid(n_tasks: int, k: int) -> np.ndarray:
    if n_tasks == 2:
        a = np.linspace(0.0, 1.0, k + 1)
        return np.stack([a, 1 - a], axis=1)
    i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
    keep = i + j <= k
    return np.stack([i[keep], j[keep], k - i[keep] - j[keep]], axis=1) / k
