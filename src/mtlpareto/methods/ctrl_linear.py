"""Controllable Pareto MTL with preference-based linear scalarisation (Lin et al. 2020, eq. 4, 8).

Each step samples preferences p ~ Dirichlet(alpha 1) (alpha = 1: uniform on the simplex, the
paper's choice) and descends sum_t p_t L_t(theta(p)) w.r.t. the hypernetwork.  On a concave
Pareto front this can only reach the front's ends (Sec. 4).
"""

from __future__ import annotations

import torch

from mtlpareto.methods.controllable import ControllableMethod, ControllableStepContext
from mtlpareto.methods import METHODS


@METHODS.register("ctrl_linear")
class CtrlLinear(ControllableMethod):
    label = "Controllable LS"
    name = "ctrl_linear"

    def weights(self, ctx: ControllableStepContext) -> torch.Tensor:
        return self.preference_weights(ctx)
