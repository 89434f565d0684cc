"""Pareto HyperNetwork with EPO's search direction (PHN-EPO, Navon et al. 2021).

Each step samples rays r ~ Dirichlet(0.2) (PHN's default) and weights the losses by the Exact
Pareto Optimal search direction (Mahapatra & Rajan 2020): an LP on the Gram matrix of the task
gradients w.r.t. the hypernetwork's parameters that first balances r_t L_t onto the ray, then
descends along it.  An infeasible LP is an error, never a silent fallback to fixed weights.
"""

from __future__ import annotations

import torch

from mtlpareto.methods.controllable import ControllableStepContext, ParetoHyperNetworkMethod
from mtlpareto.solvers.directions import epo_weights
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import check_number


@METHODS.register("phn_epo")
class PHNEPO(ParetoHyperNetworkMethod):
    label = "PHN-EPO"
    name = "phn_epo"

    def __init__(
        self,
        n_tasks: int,
        preference: tuple[float, ...] | None = None,
        task: int | None = None,
        *,
        epo_eps: float = 1e-4,
        **options,  # ParetoHyperNetworkMethod's: hypernetwork, preference sampling, evaluation
    ) -> None:
        super().__init__(n_tasks, preference, task, **options)
        # EPO's threshold on the non-uniformity mu(r L) between balancing and descending.
        self.epo_eps = float(check_number(epo_eps, "epo_eps", "phn_epo", low=0.0, low_open=True))

    def weights(self, ctx: ControllableStepContext) -> torch.Tensor:
        n, t = ctx.losses.shape
        gram = ctx.gram().numpy()
        losses = ctx.losses.detach().cpu().double().numpy()
        rows = []
        for i in range(n):
            block = gram[i * t : (i + 1) * t, i * t : (i + 1) * t]
            result = epo_weights(losses[i], block, ctx.preferences[i].numpy(), self.epo_eps)
            self.count(f"epo_{result.mode}")
            rows.append(torch.from_numpy(result.weights))
        return torch.stack(rows).to(torch.float32) / n
