"""DYMU (Raychaudhuri et al., CVPR 2022): controllable dynamic architectures; the method's options.

What a DYMU run trains lives in `mtlpareto.training.dymu` (learner `dymu`) and
`mtlpareto.models.dymu`; this class holds the options, checked when the run is built, and the
random streams of the training: (r, c) ~ Dirichlet(dirichlet_alpha) x U(0, 1) per step and the
Gumbel noise of the edge samples.

* `anchor`: the experiment whose `single_task` runs (same dataset and model, same seed) are the
  anchor net; their checkpoints are inputs of the run (pipeline.anchor_checkpoints).
* `edge_epochs`: the first epochs train the edge hypernet (task loss + branching regulariser);
  the remaining epochs of the experiment's `train.epochs` train the weight hypernet on the task
  loss alone, with the edge hypernet fixed (the paper's two stages).
* Gumbel temperature `tau_start * tau_decay ** (step // tau_every)` (paper: 5, 0.97, 300).
* `lambda_active`, `lambda_inactive`, `active_threshold` (r_i >= active_threshold / N is active):
  the regulariser (paper: 1, 0.1, 0.6; the patent gives lambda_A 0.05); `task_weights` w_i in
  sum_i r_i w_i L_i (default 1; the paper sets them against loss scales without saying how).
* `affinity_images` K: images of the training split for the task affinity.
* `own_stream_bias`: initial logit bias of each node's own stream (our choice: the search starts
  near the anchor net, as the paper's anchor "guides the architecture search as a prior").
* `block_stages`: stages per tree layer (None: one layer per backbone stage).
* Evaluation, at each budget of `eval_budgets` (paper: c in {0, 1}): hypervolume (reference
  `hv_reference`) and mean uniformity of the test losses at `eval_preferences` preferences drawn
  uniformly from the simplex (paper: 20), mean parameters and FLOPs of the trees chosen for
  `cost_preferences` such draws (paper: 1000; no data pass); for the figures, `eval_points`
  preferences per task sweep (task t's weight from 0 to 1, the others equal).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, check_number


@METHODS.register("dymu")
class Dymu(Method):
    label = "DYMU"
    learns: ClassVar[str] = "dymu"
    sweep: ClassVar[str] = "none"
    name = "dymu"

    def __init__(
        self,
        n_tasks: int,
        preference: tuple[float, ...] | None = None,
        task: int | None = None,
        *,
        anchor: str | None = None,
        edge_epochs: int = 1,
        dirichlet_alpha: float = 0.2,
        tau_start: float = 5.0,
        tau_decay: float = 0.97,
        tau_every: int = 300,
        lambda_active: float = 1.0,
        lambda_inactive: float = 0.1,  # the paper's lambda_I (lambda_A: 1 in the paper, 0.05 in the patent)
        active_threshold: float = 0.6,
        task_weights: list[float] | None = None,
        embedding_dim: int = 32,
        edge_hidden: int = 100,
        edge_layers: int = 2,
        own_stream_bias: float = 2.0,
        weight_hidden: int = 100,
        weight_layers: int = 3,
        affinity_images: int = 32,
        block_stages: list[int] | None = None,
        eval_points: int = 3,
        eval_preferences: int = 20,
        cost_preferences: int = 1000,
        eval_budgets: list[float] | None = None,
        hv_reference: float | list[float] = 4.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_tasks, preference, task)
        name = self.name
        if preference is not None:
            raise ConfigError("dymu learns every preference and budget at once; it takes no fixed preference (sweep: none)")
        if anchor is not None and (not isinstance(anchor, str) or not anchor):
            raise ConfigError(f"dymu: option anchor must name the experiment whose single_task runs form the anchor net, got {anchor!r}")
        self.anchor = anchor  # required by the dymu learner; a plain network needs none (see `backward`)
        self.edge_epochs = int(check_number(edge_epochs, "edge_epochs", name, low=1, integer=True))
        self.dirichlet_alpha = float(check_number(dirichlet_alpha, "dirichlet_alpha", name, low=0.0, low_open=True))
        self.tau_start = float(check_number(tau_start, "tau_start", name, low=0.0, low_open=True))
        self.tau_decay = float(check_number(tau_decay, "tau_decay", name, low=0.0, high=1.0, low_open=True))
        self.tau_every = int(check_number(tau_every, "tau_every", name, low=1, integer=True))
        self.lambda_active = float(check_number(lambda_active, "lambda_active", name, low=0.0))
        self.lambda_inactive = float(check_number(lambda_inactive, "lambda_inactive", name, low=0.0))
        self.active_threshold = float(check_number(active_threshold, "active_threshold", name, low=0.0, high=1.0))
        weights = [1.0] * n_tasks if task_weights is None else list(task_weights)
        if len(weights) != n_tasks:
            raise ConfigError(f"dymu: option task_weights has {len(weights)} entries for {n_tasks} tasks")
        self.task_weights = torch.tensor([check_number(w, "task_weights", name, low=0.0) for w in weights], dtype=torch.float32)
        self.edge_net = {
            "embedding_dim": int(check_number(embedding_dim, "embedding_dim", name, low=1, integer=True)),
            "hidden_dim": int(check_number(edge_hidden, "edge_hidden", name, low=1, integer=True)),
            "n_hidden": int(check_number(edge_layers, "edge_layers", name, low=1, integer=True)),
            "own_stream_bias": float(check_number(own_stream_bias, "own_stream_bias", name)),
        }
        self.weight_net = {
            "hidden_dim": int(check_number(weight_hidden, "weight_hidden", name, low=1, integer=True)),
            "n_hidden": int(check_number(weight_layers, "weight_layers", name, low=1, integer=True)),
        }
        self.affinity_images = int(check_number(affinity_images, "affinity_images", name, low=3, integer=True))
        if block_stages is not None and (not isinstance(block_stages, list) or not block_stages):
            raise ConfigError(f"dymu: option block_stages must be a list of stage counts, got {block_stages!r}")
        self.block_stages = block_stages
        self.eval_points = int(check_number(eval_points, "eval_points", name, low=2, integer=True))
        self.eval_preferences = int(check_number(eval_preferences, "eval_preferences", name, low=1, integer=True))
        self.cost_preferences = int(check_number(cost_preferences, "cost_preferences", name, low=1, integer=True))
        budgets = [0.0, 1.0] if eval_budgets is None else list(eval_budgets)
        if not budgets:
            raise ConfigError("dymu: option eval_budgets must list at least one budget in [0, 1]")
        self.eval_budgets = [float(check_number(b, "eval_budgets", name, low=0.0, high=1.0)) for b in budgets]
        ref = [hv_reference] * n_tasks if isinstance(hv_reference, (int, float)) else list(hv_reference)
        if len(ref) != n_tasks:
            raise ConfigError(f"dymu: option hv_reference has {len(ref)} entries for {n_tasks} tasks")
        self.hv_reference = [float(check_number(v, "hv_reference", name, low=0.0, low_open=True)) for v in ref]
        if seed is None:
            seed = torch.initial_seed()
        seed = int(check_number(seed, "seed", name, low=0, integer=True))
        self.rng = np.random.default_rng(seed)
        self.gumbel = torch.Generator().manual_seed(seed)

    def sample(self) -> tuple[torch.Tensor, float]:
        """(r, c) ~ Dirichlet(alpha) x U(0, 1)."""
        r = torch.from_numpy(self.rng.dirichlet([self.dirichlet_alpha] * self.n_tasks)).to(torch.float32)
        return r, float(self.rng.uniform(0.0, 1.0))

    def temperature(self, step: int) -> float:
        from mtlpareto.models.dymu import temperature_at

        return temperature_at(step, self.tau_start, self.tau_decay, self.tau_every)

    def backward(self, ctx) -> torch.Tensor:
        """On a plain MTL network (no anchor net, no tree to choose): DYMU's task loss
        sum_i r_i w_i L_i at the uniform preference, like the controllable methods' fallback."""
        weights = (torch.full((self.n_tasks,), 1.0 / self.n_tasks) * self.task_weights).to(ctx.losses.dtype).to(ctx.losses.device)
        (weights * ctx.losses).sum().backward()
        return weights.detach()

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "gumbel": self.gumbel.get_state(), "stats": dict(self.stats)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.gumbel.set_state(state["gumbel"])
        self.stats = dict(state.get("stats", {}))
