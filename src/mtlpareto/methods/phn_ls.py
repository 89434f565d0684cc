"""Pareto HyperNetwork with linear scalarisation (PHN-LS, Navon et al. 2021).

The baseline of Lin et al. 2020, App. C.  PHN's defaults: rays ~ Dirichlet(0.2) and a
hypernetwork without chunking (an MLP on the ray, 100 hidden units, then one linear head per
target tensor: ~100x the target's size).  The update is sum_t r_t L_t(theta(r)).
"""

from __future__ import annotations

import torch

from mtlpareto.methods.controllable import ControllableStepContext, ParetoHyperNetworkMethod
from mtlpareto.methods import METHODS


@METHODS.register("phn_ls")
class PHNLS(ParetoHyperNetworkMethod):
    label = "PHN-LS"
    name = "phn_ls"

    def weights(self, ctx: ControllableStepContext) -> torch.Tensor:
        return self.preference_weights(ctx)
