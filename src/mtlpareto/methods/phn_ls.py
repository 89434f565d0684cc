"""Pareto HyperNetwork with linear scalarisation (PHN-LS, Navon et al. 2021).

The baseline of Lin et al. 2020, App. C.  PHN's defaults: rays ~ Dirichlet(0.2) and a
hypernetwork without chunking (an MLP on the ray, 100 hidden units, then one linear head per
target tensor: ~100x the target's size).  The update is sum_t r_t L_t(theta(r)).
"""

from __future__ import annotations

import torch

from mtlpareto.controllable.base import ControllableMethod, ControllableStepContext
from mtlpareto.methods import METHODS


@METHODS.register("phn_ls")
class PHNLS(ControllableMethod):
    label = "PHN-LS"

    def __init__(
        self,
        n_tasks: int,
        preference: tuple[float, ...] | None = None,
        task: int | None = None,
        dirichlet_alpha: float = 0.2,
        n_preferences: int = 1,
        hidden_dim: int = 100,
        n_hidden: int = 2,
        embedding_dim: int = 32,
        chunk_size: int | str | None = None,
        eval_points: int = 21,
        hv_reference: float | list[float] = 2.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            n_tasks, preference, task, name="phn_ls", dirichlet_alpha=dirichlet_alpha, n_preferences=n_preferences,
            hidden_dim=hidden_dim, n_hidden=n_hidden, embedding_dim=embedding_dim, chunk_size=chunk_size,
            eval_points=eval_points, hv_reference=hv_reference, seed=seed,
        )

    def weights(self, ctx: ControllableStepContext) -> torch.Tensor:
        return ctx.preferences.to(torch.float32) / ctx.preferences.shape[0]
