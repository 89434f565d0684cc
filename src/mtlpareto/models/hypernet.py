"""Preference-conditioned hypernetworks (Ha et al. 2017) and parameter-free target networks.

Controllable Pareto MTL (Lin et al. 2020, Sec. 5.1) and Pareto HyperNetworks (Navon et al.
2021) learn one mapping preference -> MTL network.  Here:

* `FunctionalTarget` turns any registered MTL model (LeNet, the CIFAR ConvNet below, ...)
  into a pure function of its parameters: the model is built on the meta device, so it owns
  no storage, and runs through `torch.func.functional_call` with generated weights
  (differentiable w.r.t. the hypernetwork, used in training).
* `HyperNetwork` generates the target's flat parameter vector, either
  - chunked (Lin et al. Fig. 5): a preference embedding and one trainable embedding per chunk
    go through a shared MLP; one shared linear projection turns its output into the chunk's
    parameters.  `chunk_size="auto"` picks ~N/(hidden_dim+1) so the hypernetwork's size stays
    comparable to the target's N parameters (as in the paper), or
  - unchunked (PHN; Lin et al. for small targets): an MLP on the preference and one linear
    projection per target tensor (about hidden_dim x N parameters).
  Every generated value is raw * fixed per-tensor scale, the scale being PyTorch's default
  init std of that layer; at construction the projection is rescaled so the raw values have
  unit variance, so a fresh hypernetwork generates a network at its usual init scale
  (a simple variance matching in the spirit of Chang et al. 2020).
* `ControllableModel` couples both.  `set_preference(p)` generates the weights once and copies
  them into a real (unregistered) copy of the target, so inference at a fixed preference runs
  at the plain network's speed; a new preference, or hypernetwork weights that changed in
  place (optimiser steps, load_state_dict), triggers a new generation.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Sequence

import torch
from torch import nn

from mtlpareto.errors import ConfigError

CHUNK_AUTO = "auto"


# --------------------------------------------------------------------------- preferences


def normalize_preference(preference: Any, n_tasks: int) -> torch.Tensor:
    """A validated preference on the simplex (float32 [T]): non-negative, not all zero, sum 1.

    Accepts a sequence, numpy array or tensor; raises ConfigError naming what is wrong.
    """
    try:
        p = torch.as_tensor(preference, dtype=torch.float64).detach().cpu().flatten()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"preference {preference!r} is not a vector of numbers: {exc}") from None
    if p.numel() != n_tasks:
        raise ConfigError(f"preference has {p.numel()} entries but the model has {n_tasks} tasks; give one non-negative weight per task")
    if not bool(torch.isfinite(p).all()):
        raise ConfigError(f"preference {p.tolist()} has NaN or infinite entries")
    if bool((p < 0).any()):
        raise ConfigError(f"preference {p.tolist()} has negative entries; weights must be >= 0")
    total = float(p.sum())
    if not total > 0:
        raise ConfigError(f"preference {p.tolist()} is all zero; at least one task needs a positive weight")
    return (p / total).to(torch.float32)


# --------------------------------------------------------------------------- target networks


def _default_init_std(module: nn.Module) -> dict[str, float]:
    """Per-parameter init std of a target: PyTorch's default for conv/linear layers.

    nn.Linear / nn.Conv*d draw weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), std
    1/sqrt(3 fan_in).  A module may override with a `hyper_init_std` dict {param: std}.
    """
    stds: dict[str, float] = {}
    for mod_name, mod in module.named_modules():
        own = dict(mod.named_parameters(recurse=False))
        custom = getattr(mod, "hyper_init_std", {}) or {}
        weight = own.get("weight")
        fan_in = None
        if weight is not None and weight.dim() >= 2:
            fan_in = int(weight.shape[1]) * math.prod(int(s) for s in weight.shape[2:])
        for pname, p in own.items():
            full = f"{mod_name}.{pname}" if mod_name else pname
            if pname in custom:
                stds[full] = float(custom[pname])
            elif fan_in:
                stds[full] = 1.0 / math.sqrt(3.0 * fan_in)
            else:
                raise ConfigError(
                    f"hypernetwork target: cannot infer an init scale for parameter {full!r} "
                    f"(shape {tuple(p.shape)}); give its module a `hyper_init_std` dict"
                )
    return stds


class FunctionalTarget:
    """A registered MTL model as a pure function of its parameters; it owns none.

    Deliberately not an nn.Module: nothing here is trainable or saved; only the
    hypernetwork is.
    """

    def __init__(self, builder: Callable[[], nn.Module]) -> None:
        with torch.device("meta"):
            skeleton = builder()
        buffers = [name for name, _ in skeleton.named_buffers()]
        if buffers:
            raise ConfigError(
                f"hypernetwork target {type(skeleton).__name__} has buffers {buffers}; generated "
                "targets must hold parameters only (no BatchNorm running statistics)"
            )
        self.skeleton = skeleton
        self.shapes: dict[str, torch.Size] = {n: p.shape for n, p in skeleton.named_parameters()}
        if not self.shapes:
            raise ConfigError(f"hypernetwork target {type(skeleton).__name__} has no parameters to generate")
        self.init_std = _default_init_std(skeleton)
        self._inference: dict[torch.device, nn.Module] = {}

    @property
    def numel(self) -> int:
        return sum(math.prod(s) for s in self.shapes.values())

    @property
    def n_tasks(self) -> int:
        return getattr(self.skeleton, "n_tasks", 0)

    def __call__(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        return torch.func.functional_call(self.skeleton, params, (x,))

    def train(self, mode: bool = True) -> None:
        self.skeleton.train(mode)

    def load(self, params: dict[str, torch.Tensor]) -> nn.Module:
        """A real copy of the target on the params' device, filled with `params` (no grad)."""
        device = next(iter(params.values())).device
        module = self._inference.get(device)
        if module is None:
            # to_empty allocates storage without running the initialisers: the values are
            # overwritten right below.
            module = copy.deepcopy(self.skeleton).to_empty(device=device).requires_grad_(False).eval()
            self._inference[device] = module
        with torch.no_grad():
            for name, p in module.named_parameters():
                p.copy_(params[name])
        return module


# --------------------------------------------------------------------------- hypernetwork


def _mlp(n_in: int, hidden: int, n_hidden: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n_hidden):
        layers += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*layers)


def resolve_chunk_size(chunk_size: int | str | None, n_target: int, hidden_dim: int) -> int | None:
    if chunk_size is None:
        return None
    if chunk_size == CHUNK_AUTO:
        # n_chunks ~ hidden_dim + 1: the projection (hidden_dim + 1) x chunk_size then holds
        # ~N parameters and the generated [n_chunks, chunk_size] matrix can have full rank.
        return max(1, math.ceil(n_target / (hidden_dim + 1)))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer, 'auto' or null, got {chunk_size!r}")
    return chunk_size


class HyperNetwork(nn.Module):
    """preference [T] -> flat target parameters [N], returned as a {name: tensor} dict."""

    def __init__(
        self,
        n_tasks: int,
        shapes: dict[str, torch.Size],
        init_std: dict[str, float],
        hidden_dim: int = 64,
        n_hidden: int = 2,
        embedding_dim: int = 32,
        chunk_size: int | str | None = CHUNK_AUTO,
    ) -> None:
        super().__init__()
        for name, value, low in (("hidden_dim", hidden_dim, 1), ("n_hidden", n_hidden, 1), ("embedding_dim", embedding_dim, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"hypernetwork {name} must be an integer >= {low}, got {value!r}")
        self.n_tasks = n_tasks
        self.names = list(shapes)
        self.shapes = [torch.Size(shapes[n]) for n in self.names]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.n_target = sum(self.sizes)
        self.chunk_size = resolve_chunk_size(chunk_size, self.n_target, hidden_dim)
        self.options = {"hidden_dim": hidden_dim, "n_hidden": n_hidden, "embedding_dim": embedding_dim, "chunk_size": chunk_size}
        if self.chunk_size is None:
            self.trunk = _mlp(n_tasks, hidden_dim, n_hidden)
            self.heads = nn.ModuleList(nn.Linear(hidden_dim, n) for n in self.sizes)
        else:
            self.n_chunks = math.ceil(self.n_target / self.chunk_size)
            self.preference_embedding = nn.Linear(n_tasks, embedding_dim)
            self.chunk_embeddings = nn.Parameter(torch.randn(self.n_chunks, embedding_dim))
            self.trunk = _mlp(2 * embedding_dim, hidden_dim, n_hidden)
            self.projection = nn.Linear(hidden_dim, self.chunk_size)
        scale = torch.cat([torch.full((n,), float(init_std[name])) for name, n in zip(self.names, self.sizes)])
        self.register_buffer("scale", scale, persistent=False)
        self._match_output_variance()

    @torch.no_grad()
    def _match_output_variance(self) -> None:
        """Rescale the projections so raw outputs have unit variance at the uniform preference."""
        uniform = torch.full((self.n_tasks,), 1.0 / self.n_tasks)
        if self.chunk_size is None:
            feats = self.trunk(uniform)
            for head in self.heads:
                head.bias.zero_()
                std = float(head(feats).std()) if head.out_features > 1 else float(head(feats).abs().mean())
                if std > 0:
                    head.weight.div_(std)
        else:
            self.projection.bias.zero_()
            std = float(self._raw(uniform).std())
            if std > 0:
                self.projection.weight.div_(std)

    def _raw(self, preference: torch.Tensor) -> torch.Tensor:
        if self.chunk_size is None:
            feats = self.trunk(preference)
            return torch.cat([head(feats) for head in self.heads])
        emb = self.preference_embedding(preference).expand(self.n_chunks, -1)
        feats = self.trunk(torch.cat([emb, self.chunk_embeddings], dim=1))
        # All chunks in one matmul: [n_chunks, hidden] @ [hidden, chunk_size].
        return self.projection(feats).reshape(-1)[: self.n_target]

    def forward(self, preference: torch.Tensor) -> dict[str, torch.Tensor]:
        preference = preference.to(self.scale)
        flat = self._raw(preference) * self.scale
        return {name: chunk.view(shape) for name, chunk, shape in zip(self.names, flat.split(self.sizes), self.shapes)}


# --------------------------------------------------------------------------- the controllable model


class ControllableModel(nn.Module):
    """Hypernetwork + parameter-free target: `set_preference(p)`, then `model(x)`.

    `generate(p)` is differentiable (training); `forward(x)` is inference with the cached
    weights of the current preference.  `generations` counts hypernetwork evaluations.
    """

    def __init__(self, target: FunctionalTarget, hypernet: HyperNetwork, tasks: Sequence[Any] = (), meta: dict | None = None) -> None:
        super().__init__()
        self.hypernet = hypernet
        # A plain attribute, not a submodule: the target owns no parameters, so
        # model.parameters() is exactly the hypernetwork's.
        object.__setattr__(self, "target", target)
        self.n_tasks = hypernet.n_tasks
        self.tasks = list(tasks)
        self.meta = dict(meta or {})
        self.generations = 0
        self._preference: torch.Tensor | None = None
        self._cached: dict[str, torch.Tensor] | None = None
        self._module: nn.Module | None = None
        self._versions: tuple | None = None

    @property
    def hypernet_parameters(self) -> int:
        return sum(p.numel() for p in self.hypernet.parameters())

    @property
    def target_parameters(self) -> int:
        return self.target.numel

    @property
    def preference(self) -> torch.Tensor | None:
        return None if self._preference is None else self._preference.clone()

    def train(self, mode: bool = True) -> "ControllableModel":
        super().train(mode)
        self.target.train(mode)
        return self

    def generate(self, preference: torch.Tensor) -> dict[str, torch.Tensor]:
        """Target parameters for `preference` (on the simplex), differentiable."""
        self.generations += 1
        device = self.hypernet.scale.device
        return self.hypernet(preference.to(device))

    def forward_with(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        return self.target(params, x)

    def _state_key(self) -> tuple:
        # Tensor._version grows on every in-place update (optimizer.step, load_state_dict),
        # so a changed hypernetwork invalidates the cache without hashing its values.
        return tuple(p._version for p in self.hypernet.parameters()) + (self.hypernet.scale.device,)

    @torch.no_grad()
    def set_preference(self, preference: Any) -> torch.Tensor:
        """Validate and normalise `preference`, generate its weights once; returns it [T]."""
        p = normalize_preference(preference, self.n_tasks)
        if self._preference is not None and torch.equal(p, self._preference) and self._versions == self._state_key():
            return p.clone()
        self._cached = self.generate(p)
        self._module = self.target.load(self._cached)
        self._preference = p
        self._versions = self._state_key()
        return p.clone()

    def generated(self) -> dict[str, torch.Tensor]:
        """The cached weights of the current preference (read-only use)."""
        self._require_preference()
        return dict(self._cached)  # type: ignore[arg-type]

    def _require_preference(self) -> None:
        if self._preference is None:
            raise ConfigError("no preference set: call model.set_preference(p) before model(x)")
        if self._versions != self._state_key():
            self.set_preference(self._preference)  # the hypernetwork changed: regenerate

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._require_preference()
        return self._module(x)  # type: ignore[misc]
