"""What a preference-conditioned method sees at a step, and the base class of those methods.

A step samples n preferences; the hypernetwork generates one network per preference and the
losses form an [n, T] matrix.  A method turns them (and, lazily, the [n*T, D] Jacobian w.r.t.
the hypernetwork's parameters, computed in one batched vector-Jacobian product) into loss
weights alpha [n, T]; the step applies d = alpha^T J.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from mtlpareto.errors import ConfigError
from mtlpareto.methods.base import Method, StepContext, check_number, jacobian_rows
from mtlpareto.models.hypernet import CHUNK_AUTO


class ControllableStepContext:
    """Losses [n, T] of n sampled preferences [n, T] and gradients w.r.t. `params`."""

    def __init__(
        self,
        losses: torch.Tensor,
        preferences: torch.Tensor,
        params: list[torch.Tensor],
        step: int = 0,
        epoch: int = 0,
    ) -> None:
        if losses.dim() != 2 or losses.shape != preferences.shape:
            raise ValueError(f"losses {tuple(losses.shape)} and preferences {tuple(preferences.shape)} must both be [n, T]")
        self.losses = losses
        self.preferences = preferences.detach().to(torch.float64).cpu()
        self.params = [p for p in params if p.requires_grad]
        self.step = step
        self.epoch = epoch
        self._jacobian: torch.Tensor | None = None

    @property
    def n_tasks(self) -> int:
        return self.losses.shape[1]

    def jacobian(self) -> torch.Tensor:
        """[n*T, D]: row i*T + t is d L_it / d params, all rows in one batched backward."""
        if self._jacobian is None:
            flat = self.losses.reshape(-1)
            grads = jacobian_rows(flat, self.params, "batched")
            self._jacobian = torch.cat([g.reshape(flat.numel(), -1) for g in grads], dim=1)
        return self._jacobian

    def gram(self) -> torch.Tensor:
        """J J^T in float64 on the CPU ([n*T, n*T])."""
        j = self.jacobian().detach().to(torch.float64)
        return (j @ j.T).cpu()

    def backward_weighted(self, weights: torch.Tensor) -> None:
        """Set .grad to d = sum_it w_it grad L_it (weights are constants)."""
        w = weights.detach().to(self.losses.dtype).to(self.losses.device)
        if self._jacobian is None:
            (w * self.losses).sum().backward()
            return
        # The Jacobian is already there: alpha^T J is the gradient, no second backward pass.
        direction = w.reshape(-1) @ self._jacobian
        offset = 0
        for p in self.params:
            n = p.numel()
            g = direction[offset : offset + n].view_as(p)
            p.grad = g.clone() if p.grad is None else p.grad + g
            offset += n


class ControllableMethod(Method):
    """Base of the hypernetwork methods (they learn a hypernetwork; one run per seed).

    Holds the hypernetwork architecture, the preference sampling (Dirichlet, App. A.3: several
    preferences per step) and the evaluation options; subclasses implement `weights`.
    """

    learns: ClassVar[str] = "hypernetwork"
    sweep: ClassVar[str] = "none"

    name: ClassVar[str]  # the registry name, in error messages

    # The defaults are Lin et al.'s compact, chunked hypernetwork with preferences drawn
    # uniformly from the simplex; ParetoHyperNetworkMethod holds PHN's.
    def __init__(
        self,
        n_tasks: int,
        preference: tuple[float, ...] | None = None,
        task: int | None = None,
        *,
        dirichlet_alpha: float = 1.0,
        n_preferences: int = 1,
        hidden_dim: int = 64,
        n_hidden: int = 2,
        embedding_dim: int = 32,
        chunk_size: int | str | None = CHUNK_AUTO,
        eval_points: int = 21,
        hv_reference: float | list[float] = 2.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_tasks, preference, task)
        name = self.name
        self.dirichlet_alpha = float(check_number(dirichlet_alpha, "dirichlet_alpha", name, low=0.0, low_open=True))
        self.n_preferences = int(check_number(n_preferences, "n_preferences", name, low=1, integer=True))
        for option, value in (("hidden_dim", hidden_dim), ("n_hidden", n_hidden), ("embedding_dim", embedding_dim)):
            check_number(value, option, name, low=1, integer=True)
        if not (chunk_size is None or chunk_size == CHUNK_AUTO or (isinstance(chunk_size, int) and not isinstance(chunk_size, bool) and chunk_size >= 1)):
            raise ConfigError(f"{name}: option chunk_size must be a positive integer, 'auto' or null, got {chunk_size!r}")
        self.hypernet = {"hidden_dim": hidden_dim, "n_hidden": n_hidden, "embedding_dim": embedding_dim, "chunk_size": chunk_size}
        self.eval_points = int(check_number(eval_points, "eval_points", name, low=2, integer=True))
        ref = [hv_reference] * n_tasks if isinstance(hv_reference, (int, float)) else list(hv_reference)
        if len(ref) != n_tasks:
            raise ConfigError(f"{name}: option hv_reference has {len(ref)} entries for {n_tasks} tasks")
        self.hv_reference = [float(check_number(v, "hv_reference", name, low=0.0, low_open=True)) for v in ref]
        if self.preference is not None:
            raise ConfigError(f"{name} learns every preference at once; it takes no fixed preference (sweep: none)")
        if seed is None:
            seed = torch.initial_seed()
        self.rng = np.random.default_rng(int(check_number(seed, "seed", name, low=0, integer=True)))

    # ------------------------------------------------------------------ sampling

    def sample_preferences(self) -> torch.Tensor:
        """n preferences from Dirichlet(alpha 1) on the simplex (alpha = 1: uniform), [n, T]."""
        draws = self.rng.dirichlet([self.dirichlet_alpha] * self.n_tasks, size=self.n_preferences)
        return torch.from_numpy(draws).to(torch.float32)

    # ------------------------------------------------------------------ directions

    def weights(self, ctx: ControllableStepContext) -> torch.Tensor:
        """Loss weights alpha [n, T] of the update direction alpha^T J."""
        raise NotImplementedError

    def backward(self, ctx: ControllableStepContext | StepContext) -> torch.Tensor:
        if isinstance(ctx, ControllableStepContext):
            weights = self.weights(ctx)
            ctx.backward_weighted(weights)
            return weights
        # A plain MTL network (a network learner's StepContext): the uniform preference
        # only, gradients w.r.t. all of the network's parameters.
        pref = torch.full((self.n_tasks,), 1.0 / self.n_tasks)
        inner = ControllableStepContext(ctx.losses[None], pref[None], ctx.shared_params + ctx.task_params, step=ctx.step, epoch=ctx.epoch)
        weights = self.weights(inner)
        inner.backward_weighted(weights)
        return weights[0]

    @staticmethod
    def preference_weights(ctx: ControllableStepContext) -> torch.Tensor:
        """Linear scalarisation by the sampled preferences, all equally important (Lin et al.
        App. A.3, eq. 26; PHN-LS): alpha_it = p_it / n."""
        return ctx.preferences.to(torch.float32) / ctx.preferences.shape[0]

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "stats": dict(self.stats)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.stats = dict(state.get("stats", {}))


class ParetoHyperNetworkMethod(ControllableMethod):
    """PHN's defaults (Navon et al. 2021): rays ~ Dirichlet(0.2) and a hypernetwork without
    chunking (an MLP on the ray, 100 hidden units, one linear head per target tensor)."""

    def __init__(
        self,
        n_tasks: int,
        preference: tuple[float, ...] | None = None,
        task: int | None = None,
        *,
        dirichlet_alpha: float = 0.2,
        hidden_dim: int = 100,
        chunk_size: int | str | None = None,
        **options,
    ) -> None:
        super().__init__(n_tasks, preference, task, dirichlet_alpha=dirichlet_alpha, hidden_dim=hidden_dim, chunk_size=chunk_size, **options)
