"""Controllable Pareto MTL with preference-based MOO (Lin et al. 2020, Sec. 4-5, App. A).

The preference is a direction u in loss space (here u ~ 1/p, see solvers.directions);
each step samples K unit reference vectors, and the loss vector must be closer in angle to u
than to every reference (for several preferences per step, App. A.3, the other preferences'
directions are references too).  The descent direction is the min-norm point of the convex
hull of the task gradients and the active constraints' gradients (the dual, App. A.2, solved
with the exact min-norm solver), all w.r.t. the hypernetwork's parameters.  Our addition,
`restore_below` (off by default): a solution outside its region whose task gradients are
(nearly) Pareto stationary - stuck on the front, as on the synthetic problem - moves back
along its violated constraints only (Pareto MTL's feasibility step); see
solvers.directions.ctrl_pareto_weights.
"""

from __future__ import annotations

import torch

from mtlpareto.methods.controllable import ControllableMethod, ControllableStepContext
from mtlpareto.solvers.directions import ctrl_pareto_weights, sample_unit_references
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import check_number


@METHODS.register("ctrl_pareto")
class CtrlPareto(ControllableMethod):
    label = "Controllable Pareto MTL"
    name = "ctrl_pareto"

    def __init__(
        self,
        n_tasks: int,
        preference: tuple[float, ...] | None = None,
        task: int | None = None,
        *,
        n_references: int = 3,
        restore_below: float = 0.0,
        **options,  # ControllableMethod's: hypernetwork, preference sampling, evaluation
    ) -> None:
        super().__init__(n_tasks, preference, task, **options)
        # K: "a hyperparameter ... the same for all experiments" (App. A.2); the number was
        # lost from our copy of the paper, 3 is our choice.
        self.n_references = int(check_number(n_references, "n_references", "ctrl_pareto", low=0, integer=True))
        # Threshold of the feasibility step (our addition; 0, the default, is the paper's plain
        # dual): see solvers.directions.ctrl_pareto_weights.
        self.restore_below = float(check_number(restore_below, "restore_below", "ctrl_pareto", low=0.0))

    def weights(self, ctx: ControllableStepContext) -> torch.Tensor:
        refs = sample_unit_references(self.rng, self.n_references, ctx.n_tasks) if self.n_references else None
        result = ctrl_pareto_weights(ctx.gram(), ctx.losses.detach().cpu(), ctx.preferences, refs, restore_below=self.restore_below)
        self.count("active_constraints", len(result.active))
        self.count("infeasible_preferences", len({i for i, _ in result.active}))
        self.count("feasibility_steps", len(result.restored))
        return result.weights.to(torch.float32)
