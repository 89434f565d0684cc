"""Controllable Pareto MTL with preference-based linear scalarisation (Lin et al. 2020, eq. 4, 8).

Each step samples preferences p ~ Dirichlet(alpha 1) (alpha = 1: uniform on the simplex, the
paper's choice) and descends sum_t p_t L_t(theta(p)) w.r.t. the hypernetwork.  On a concave
Pareto front this can only reach the front's ends (Sec. 4).
"""

from __future__ import annotations

import torch

from mtlpareto.controllable.base import ControllableMethod, ControllableStepContext
from mtlpareto.methods import METHODS


@METHODS.register("ctrl_linear")
class CtrlLinear(ControllableMethod):
    label = "Controllable LS"

    def __init__(
        self,
        n_tasks: int,
        preference: tuple[float, ...] | None = None,
        task: int | None = None,
        dirichlet_alpha: float = 1.0,
        n_preferences: int = 1,
        hidden_dim: int = 64,
        n_hidden: int = 2,
        embedding_dim: int = 32,
        chunk_size: int | str | None = "auto",
        eval_points: int = 21,
        hv_reference: float | list[float] = 2.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            n_tasks, preference, task, name="ctrl_linear", dirichlet_alpha=dirichlet_alpha, n_preferences=n_preferences,
            hidden_dim=hidden_dim, n_hidden=n_hidden, embedding_dim=embedding_dim, chunk_size=chunk_size,
            eval_points=eval_points, hv_reference=hv_reference, seed=seed,
        )

    def weights(self, ctx: ControllableStepContext) -> torch.Tensor:
        # App. A.3, eq. 26: all sampled preferences equally important.
        return ctx.preferences.to(torch.float32) / ctx.preferences.shape[0]
