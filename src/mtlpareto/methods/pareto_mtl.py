"""Pareto MTL (Lin, Zhen, Li, Zhang & Kwong, NeurIPS 2019): one Pareto-optimal solution per
preference vector, each confined to its sub-region of the objective space.

Preference vectors u_k (the experiment's grid) are normalised to unit length; this run's is
u_j. The sub-region of u_j is {L : G_k = (u_k - u_j)^T L <= 0 for all k != j}: the loss vector
is at least as aligned with u_j as with any other preference. Note the convention of the paper:
u is a direction in loss space, so a larger u_t allows a larger loss on task t (the opposite of
a scalarisation weight).

Phase 1 (at most `init_steps` steps, ends as soon as no constraint is violated): descend on the
violated constraints only, along the min-norm combination of their gradients
grad G_k = sum_t (u_k - u_j)_t grad L_t; task t's weight is sum_k beta_k (u_k - u_j)_t.
Phase 2: MGDA with the active constraints (G_k > -eps): the min-norm point of
{grad L_t} U {grad G_k}, with weights alpha_t (tasks) and beta_k (constraints), is the gradient of
sum_t (alpha_t + sum_k beta_k (u_k - u_j)_t) L_t; those task weights are rescaled to
sum_t |weight_t| = T. All of this follows the authors' MultiMNIST code, including G_k evaluated
on the normalised loss vector L / ||L|| (`normalize_losses`; it only changes which constraints
count as active when eps > 0). Deviations: gradients are taken w.r.t. the shared parameters
(the official code uses all parameters), and the step that finds feasibility already takes a
phase-2 step (the official code skips that batch).
"""

from __future__ import annotations

import torch

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import check_number, preference_tensor
from mtlpareto.methods.gram import GramMethod, gram_matrix
from mtlpareto.solvers import min_norm_weights_from_gram


def unit_preferences(preference_set: list[tuple[float, ...]], n_tasks: int) -> torch.Tensor:
    """[K, T] preference vectors scaled to unit length (float64)."""
    prefs = torch.stack([preference_tensor(tuple(float(x) for x in p), n_tasks, "pareto_mtl").double() for p in preference_set])
    norms = prefs.norm(dim=1, keepdim=True)
    if not bool((norms > 0).all()) or not bool(torch.isfinite(prefs).all()):
        raise ConfigError("pareto_mtl: option preference_set contains a zero or non-finite preference vector")
    return prefs / norms


def constraint_values(directions: torch.Tensor, losses: torch.Tensor, normalize_losses: bool) -> torch.Tensor:
    """G_k = (u_k - u_j)^T L (L / ||L|| when normalised), one per other preference."""
    value = losses / losses.norm() if normalize_losses and losses.norm() > 0 else losses
    return directions @ value


def min_norm_task_weights(combinations: torch.Tensor, task_gram: torch.Tensor) -> torch.Tensor:
    """Task weights of the min-norm point of {sum_t C_it grad L_t}_i, given C [N, T] and the task Gram."""
    gram = combinations @ task_gram @ combinations.T
    # Constraint gradients are combinations of the task gradients, so the points are affinely
    # dependent by construction; allow KKT roundoff a little above the solver's default.
    sol = min_norm_weights_from_gram(gram, tol=1e-8)
    return sol @ combinations


@METHODS.register("pareto_mtl")
class ParetoMTL(GramMethod):
    label = "Pareto MTL"
    sweep = "preferences"
    claims = frozenset({"scale_invariant"})  # tasks are tied to their preference entries: no permutation claim

    def __init__(
        self,
        n_tasks: int,
        preference: tuple[float, ...] | None = None,
        task=None,
        preference_set: list[tuple[float, ...]] | None = None,
        init_steps: int = 100,
        eps: float = 0.0,
        normalize_losses: bool = True,
    ) -> None:
        super().__init__(n_tasks, preference, task)
        own = preference_tensor(preference, n_tasks, "pareto_mtl").double()
        self.init_steps = int(check_number(init_steps, "init_steps", "pareto_mtl", low=0, integer=True))
        self.eps = float(check_number(eps, "eps", "pareto_mtl", low=0.0))
        if not isinstance(normalize_losses, bool):
            raise ConfigError(f"pareto_mtl: option normalize_losses must be true or false, got {normalize_losses!r}")
        self.normalize_losses = normalize_losses
        # Without the grid (e.g. a run built on its own) there are no other sub-regions: the
        # method is then MGDA with |weights| summing to T.
        prefs = unit_preferences(list(preference_set) if preference_set else [tuple(own.tolist())], n_tasks)
        own_unit = own / own.norm()
        matches = [k for k in range(len(prefs)) if torch.allclose(prefs[k], own_unit, atol=1e-9, rtol=0)]
        if not matches:
            raise ConfigError(f"pareto_mtl: preference {tuple(own.tolist())} is not in option preference_set")
        j = matches[0]
        others = [k for k in range(len(prefs)) if k != j and not torch.allclose(prefs[k], own_unit, atol=1e-9, rtol=0)]
        self.directions = prefs[others] - own_unit  # rows u_k - u_j, [K, T]
        self.init_steps_done = 0
        self.phase1_done = False

    def weights_for(self, losses: torch.Tensor, task_gram: torch.Tensor) -> torch.Tensor:
        """This step's task weights from the losses [T] and the Gram matrix of task gradients [T, T].

        Advances the phase-1 bookkeeping.
        """
        losses = losses.detach().to("cpu", torch.float64)
        task_gram = task_gram.detach().to("cpu", torch.float64)
        g = constraint_values(self.directions, losses, self.normalize_losses)
        if not self.phase1_done:
            violated = g > 0
            if bool(violated.any()) and self.init_steps_done < self.init_steps:
                self.init_steps_done += 1
                # The official code does not rescale phase-1 weights.
                return min_norm_task_weights(self.directions[violated], task_gram)
            self.phase1_done = True
        active = g > -self.eps
        combinations = torch.cat([torch.eye(self.n_tasks, dtype=torch.float64), self.directions[active]])
        weights = min_norm_task_weights(combinations, task_gram)
        total = weights.abs().sum()
        return weights * (self.n_tasks / total) if total > 0 else weights

    def combination(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        return self.weights_for(losses, gram_matrix(grads)).float()

    def state_dict(self) -> dict:
        return {"init_steps_done": self.init_steps_done, "phase1_done": self.phase1_done}

    def load_state_dict(self, state: dict) -> None:
        self.init_steps_done = int(state["init_steps_done"])
        self.phase1_done = bool(state["phase1_done"])
